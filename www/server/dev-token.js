#!/usr/bin/env node
// `npm run --silent dev-token -- <user-uuid> [--role r] [--expires-in seconds] [--jwt-secret s]`: prints a token
// the dev server accepts for that user.
import { parseArgs } from "node:util";
import { DEFAULTS, isUuid, signToken } from "./auth.js";

const usage = "usage: npm run --silent dev-token -- <user-uuid> [--role authenticated] [--expires-in 86400] [--jwt-secret s]";
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      role: { type: "string", default: "authenticated" },
      "expires-in": { type: "string", default: "86400" },
      "jwt-secret": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (e) {
  console.error(`dev-token: ${e.message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const [sub] = positionals;
if (positionals.length !== 1 || !isUuid(sub)) {
  console.error(
    `dev-token: ${positionals.length === 1 ? `"${sub}" is not a UUID` : "expected exactly one user id"} ` +
      "(auth.uid() is a uuid, e.g. 11111111-1111-4111-8111-111111111111)\n" + usage,
  );
  process.exit(2);
}
const expiresIn = Number(values["expires-in"]);
if (!Number.isInteger(expiresIn) || expiresIn <= 0) {
  console.error(`dev-token: --expires-in must be a positive number of seconds\n${usage}`);
  process.exit(2);
}
const secret = values["jwt-secret"] ?? process.env.JWT_SECRET ?? DEFAULTS.jwtSecret;
console.log(await signToken({ sub, role: values.role, secret, expiresIn }));
