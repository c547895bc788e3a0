// Several tutti nodes behind one engine, for the tests: a nats-server of its
// own (tests/lib/nats.mjs) and N real tutti-server processes with
// --engine nats://... --node-id i, each on a port of its own (--port 0),
// started one after the other (each reads the stream first).
//
//   import { startCluster } from '../lib/cluster.mjs';
//   const cl = await startCluster({ nodes: 3, schemas: [...] });
//   cl.nodes[i].url            // ws://127.0.0.1:PORT/ of node i + 1
//   await cl.kill9(1);         // kill -9 the second node
//   await cl.stop();           // SIGTERM every node (exit 0, no sanitizer report), then NATS
//
// startServer() (tests/lib/server.mjs) starts such a cluster instead of one
// server when TUTTI_TEST_CLUSTER=N: its `url` then names the nodes in turn,
// so the clients of a suite are spread over them.

import { startServer, writeSchemas, tmpDir } from './server.mjs';
import { startNats } from './nats.mjs';

/**
 * @param {object} o
 * @param {number} [o.nodes=3]
 * @param {Array|Object} [o.schemas] schema files (as startServer's)
 * @param {string} [o.schemasDir]
 * @param {string[]} [o.args] more arguments for every node
 * @param {string} [o.name] the piece's name in the engine URL
 * @param {object} [o.nats] an engine already running ({url}); default: a new nats-server
 */
export async function startCluster(o = {}) {
  const n = o.nodes ?? 3;
  const nats = o.nats ?? await startNats();
  const ownNats = !o.nats;
  const schemasDir = o.schemasDir ?? (o.schemas ? writeSchemas(tmpDir('tutti-schemas-'), o.schemas) : undefined);
  const engine = `${nats.url}/${o.name ?? 'piece'}`;
  const nodes = [];
  const cl = {
    nats, engine, nodes, schemasDir,
    /** Start node i (0-based) again, or a new one (its --node-id is i + 1). */
    async start(i) {
      const srv = await startServer({
        ...o.serverOpts, schemasDir,
        args: ['--engine', engine, '--node-id', String(i + 1), ...(o.args || [])],
      });
      nodes[i] = srv;
      return srv;
    },
    async kill9(i) { const r = await nodes[i].kill9(); return r; },
    async stopNode(i) { return nodes[i].stop(); },
    /** SIGTERM every node still running (each must exit 0), then the nats-server. */
    async stop() {
      const errs = [];
      for (const srv of nodes) {
        if (!srv || srv.exited()) continue;
        try { await srv.stop(); } catch (e) { errs.push(e); }
      }
      if (ownNats) await nats.stop();
      if (errs.length) throw errs[0];
    },
    /** Kill everything (after a failed test). */
    async destroy() {
      for (const srv of nodes) if (srv && !srv.exited()) await srv.kill9().catch(() => {});
      if (ownNats) await nats.kill9();
    },
  };
  try {
    for (let i = 0; i < n; i++) await cl.start(i);
  } catch (e) {
    await cl.destroy();
    throw e;
  }
  return cl;
}
