// node.js: the client as Node scripts import it (`import { Client } from
// 'tutti-client'`, the package's "node" export): tutti.js, with the `ws`
// package as the default WebSocket, since Node 20 has none of its own.
// Everything else is tutti.js's; pass options.WebSocket to use another.
import WebSocket from 'ws';
import { Client as BaseClient } from './tutti.js';

export * from './tutti.js';

/** tutti.js's Client; options.WebSocket defaults to `ws`. */
export class Client extends BaseClient {
  constructor(options = {}) {
    super({ WebSocket, ...options });
  }
}
