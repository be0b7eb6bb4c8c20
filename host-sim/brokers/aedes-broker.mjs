// aedes (npm), the Node MQTT broker, in a process of its own for the broker interop suite:
//   node host-sim/brokers/aedes-broker.mjs <port> [<users as JSON: {"name": "password"}> [<restricted user>]]
// Listens on 127.0.0.1:<port>, prints "ready <port>" once it does; with users, a CONNECT with any
// other user name or password is refused (return code 4, aedes' answer to bad credentials), and
// the restricted user's subscriptions to deny/... are refused (granted 0x80: aedes' ACL hook). Sessions are in
// aedes' default in-memory persistence (they survive a client's reconnect, not this process).
import net from "node:net";
import { Aedes } from "aedes";

const port = Number(process.argv[2]);
const users = process.argv[3] !== undefined ? JSON.parse(process.argv[3]) : undefined;
const restricted = process.argv[4];

const broker = await Aedes.createBroker({
  authenticate: (client, username, password, done) => {
    if (users === undefined) return done(null, true);
    const ok = username !== undefined && Object.hasOwn(users, username) && password !== undefined && password.toString() === users[username];
    if (ok) {
      client.petrelUser = username;
      return done(null, true);
    }
    const e = new Error("bad user name or password");
    e.returnCode = 4;
    return done(e, null);
  },
  authorizeSubscribe: (client, sub, done) => done(null, client.petrelUser === restricted && sub.topic.startsWith("deny/") ? null : sub),
});
const server = net.createServer(broker.handle);
server.listen(port, "127.0.0.1", () => console.log(`ready ${port}`));
const stop = () => server.close(() => broker.close(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
