// Opens N idle m365SyncProgress subscriptions against the demo on 127.0.0.1:8080, each with a token
// of its own subject (HS256 with the demo's secret), and holds them for H seconds.
//   node --experimental-websocket subscribers.mjs <jwt-secret> <N> <H>
import crypto from "node:crypto";
const secret = process.argv[2], n = +process.argv[3], hold = +process.argv[4];
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
function mint(sub) {
  const head = b64({ typ: "JWT", alg: "HS256" });
  const body = b64({ sub, account_id: 1, permissions: [], exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac("sha256", secret).update(head + "." + body).digest("base64url");
  return head + "." + body + "." + sig;
}
let got = 0;
const socks = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket("ws://127.0.0.1:8080/graphql/ws", "graphql-transport-ws");
  socks.push(ws);
  ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + mint("viewer-" + i) } }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "connection_ack") ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "subscription { m365SyncProgress { id version status tenantsDone updatedAt } }" } }));
    else if (msg.type === "next") { got++; if (got === n) console.log("all", n, "got their first event"); }
    else console.log(msg.type, JSON.stringify(msg.payload).slice(0, 200));
  };
  ws.onclose = () => {};
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, hold * 1000));
console.log("got", got);
process.exit(0);
