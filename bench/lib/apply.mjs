// Rows written before a section measures, through the dev server's record_sync_apply as the token's user (so
// that row-level security files them under that user and no other section's rows count).

/** Applies `changes` (record_sync_apply's shape) in calls of at most 500; throws on a refused call. */
export async function applyAsUser(restUrl, token, changes) {
  for (let start = 0; start < changes.length; start += 500) {
    const res = await fetch(`${restUrl}/rpc/record_sync_apply`, {
      method: "POST",
      headers: { "content-type": "application/json", apikey: "dev-anon-key", authorization: `Bearer ${token}` },
      body: JSON.stringify({ changes: changes.slice(start, start + 500) }),
    });
    if (!res.ok) throw new Error(`seeding: HTTP ${res.status} ${await res.text()}`);
  }
}
