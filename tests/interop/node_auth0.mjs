// node-auth0 (npm `auth0`, pinned in package.json) manages idp's users, unchanged apart from its domain.
// Usage: node node_auth0.mjs DOMAIN CLIENT_ID CLIENT_SECRET CONNECTION PASSWORD BULK_QUERY
// with NODE_EXTRA_CA_CERTS naming the test CA. Prints one JSON object of what came back.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ManagementClient, ManagementApiError } from 'auth0';

const [domain, clientId, clientSecret, connection, password, bulkQuery] = process.argv.slice(2);
const management = new ManagementClient({ domain, clientId, clientSecret });
const out = {
  version: JSON.parse(readFileSync(new URL('./node_modules/auth0/package.json', import.meta.url))).version,
};

// Run a call that should fail; return what ManagementApiError carried.
async function failure(call) {
  try {
    await call();
  } catch (error) {
    if (!(error instanceof ManagementApiError)) return { unexpected: String(error) };
    return { statusCode: error.statusCode, error: error.error, errorCode: error.errorCode, message: error.message };
  }
  return { statusCode: null };
}

const email = `node-${randomUUID().slice(0, 10)}@sdk.example`;
const { data: created, status: createdStatus } = await management.users.create({
  connection, email, password, name: 'Node Four', user_metadata: { lang: 'en', theme: 'dark' },
  app_metadata: { plan: 'gold' },
});
out.created = { ...created, status: createdStatus };
out.got = (await management.users.get({ id: created.user_id })).data;
out.listed = (await management.users.getAll({ q: `email:"${email}"`, include_totals: true, search_engine: 'v3' })).data;
out.byEmail = (await management.usersByEmail.getByEmail({ email: email.toUpperCase() })).data;
out.updated = (await management.users.update(
  { id: created.user_id }, { name: 'Node Four Updated', user_metadata: { lang: 'fr' } })).data;

// Page through every bulk user, past Auth0's 1,000-result cap, as its docs show paging (page until short).
const ids = [];
let totals = null;
for (let page = 0; ; page += 1) {
  const { data } = await management.users.getAll({
    q: bulkQuery, page, per_page: 100, include_totals: true, sort: 'created_at:1', fields: 'user_id',
  });
  totals = data.total;
  ids.push(...data.users.map((user) => user.user_id));
  if (data.users.length < 100) break;
}
out.paged = { total: totals, count: ids.length, unique: new Set(ids).size, first: ids[0], last: ids.at(-1) };
out.conflict = await failure(() => management.users.create({ connection, email, password }));
out.deleted = (await management.users.delete({ id: created.user_id })).status;
out.missing = await failure(() => management.users.get({ id: created.user_id }));
out.badQuery = await failure(() => management.users.getAll({ q: 'no_such_field:1' }));
// Connections (offset pages, as node-auth0 v4 asks for them) and the log events of the writes above.
const connections = (await management.connections.getAll({ strategy: ['auth0'], include_totals: true })).data;
out.connections = { total: connections.total, names: connections.connections.map((c) => c.name) };
const first = connections.connections[0];
out.connection = (await management.connections.get({ id: first.id })).data;
out.logs = (await management.logs.getAll({ q: `type:sapi AND client_id:"${clientId}"`, per_page: 100 })).data;
out.unauthorized = await failure(
  () => new ManagementClient({ domain, token: 'not-a-token' }).users.get({ id: created.user_id }));
console.log(JSON.stringify(out));
