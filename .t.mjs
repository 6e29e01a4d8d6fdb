import { start, USER_A } from "./tests/server/helpers.js";
const s = await start();
const token = await s.token(USER_A);
const call = async (changes) => (await s.rest("rpc/record_sync_apply", { method: "POST", token, body: JSON.stringify({ changes }) })).json();
console.log(await call([{ client_id: "c", seq: 1, table: "training_plans", id: "c0", op: "upsert", data: { name: "n", weeks: 4 }, last_changed: "2026-11-24T12:00:00Z" }]));
console.log(await call([{ client_id: "c", seq: 2, table: "training_plans", id: "c0", op: "upsert", data: { name: "n", weeks: 4 }, last_changed: "2026-11-24T11:00:00Z" },{ client_id: "c", seq: 3, table: "training_plans", id: "c1", op: "upsert", data: { name: "n", weeks: 0 }, last_changed: "2026-11-24T11:00:00Z" }]));
await s.close();
