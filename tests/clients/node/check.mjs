// The official JavaScript client against alarmflow's ClickHouse HTTP interface; prints one JSON line for the test.
// Usage: node check.mjs <url> <user> <password> <event type>
import { createClient } from '@clickhouse/client'

const [url, username, password, type] = process.argv.slice(2)
const client = createClient({ url, username, password })
const out = {}
out.ping = (await client.ping()).success
const rows = await client.query({ query: 'SELECT count() AS n, toString(sum(number)) AS s FROM numbers(1000)', format: 'JSONEachRow' })
out.query = await rows.json()
const param = await client.query({
  query: 'SELECT count() AS n FROM events WHERE type = {type:String}',
  query_params: { type },
  format: 'JSONEachRow',
})
out.param = await param.json()
const compact = await client.query({ query: 'SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name', format: 'JSONCompactEachRow' })
out.tables = (await compact.json()).map((r) => r[0])
try {
  await client.command({ query: 'DROP TABLE events' })
  out.drop = 'accepted'
} catch (e) {
  out.drop = { code: e.code, message: e.message }
}
await client.close()
console.log(JSON.stringify(out))
