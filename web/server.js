// server.js: the server side of a piece, in Node, with the names of
// soundworks' Server. tutti's server is tutti-server (C): a piece's own logic
// (the hooks of soundworks, server-side states and listeners) runs here, in a
// Node process that connects to it as a client with the right to hook (the
// admin role, or a role with "hooks": true in roles.json). So porting a
// soundworks server.js means changing its imports and start-up code:
//
//   import WebSocket from 'ws';
//   import { Server } from 'tutti-client/server';
//   const server = new Server({ url: 'ws://127.0.0.1:8000/', role: 'admin', token, WebSocket });
//   server.stateManager.defineClass('player', { ready: { type: 'boolean', default: false } });
//   server.stateManager.registerUpdateHook('player', (updates, current) => { ... });
//   await server.start();
//
// Classes defined and hooks registered before start() are sent by start(),
// classes first; a refusal (a different class under the name, a role without
// the right) makes start() reject. See README.md, "Porting a soundworks piece".

import { Client } from './tutti.js';

export { TuttiError, ErrorCode } from './tutti.js';

/** server.stateManager: soundworks' ServerStateManager names over a tutti client. */
export class ServerStateManager {
  constructor(server) {
    this._server = server;
    this._classes = []; // [name, description] defined before start()
    this._hooks = [];   // hooks registered before start()
  }

  get _sm() { return this._server.client.stateManager; }

  /**
   * Define a class. Before start(): kept and sent by start(). After: sent at
   * once; resolves true when new, false when an identical class existed
   * (a restarted piece defines its classes again), rejects CLASS_EXISTS
   * when another description has the name.
   */
  defineClass(className, description) {
    if (typeof className !== 'string') throw new TypeError(`Cannot execute 'defineClass' on ServerStateManager: argument 1 must be a class name`);
    if (description === null || typeof description !== 'object' || Array.isArray(description)) {
      throw new TypeError(`Cannot execute 'defineClass' on ServerStateManager: argument 2 must be a class description`);
    }
    if (this._server.status !== 'started') {
      this._classes.push([className, description]);
      return Promise.resolve(null);
    }
    return this._sm.defineClass(className, description);
  }

  /** soundworks v4's name of defineClass. */
  registerSchema(className, description) { return this.defineClass(className, description); }

  /** Does the server know the class? */
  async isClassDefined(className) {
    try {
      await this._sm.getClassDescription(className);
      return true;
    } catch (err) {
      if (err.codeName === 'UNKNOWN_CLASS') return false;
      throw err;
    }
  }

  /** Delete a class on the running server: its states go, attached clients get onDetach. */
  deleteClass(className) { return this._sm.deleteClass(className); }

  /** soundworks v4's name of deleteClass. */
  deleteSchema(className) { return this.deleteClass(className); }

  /**
   * fn(initValues, info) before a state of the class is created: undefined
   * goes on, null aborts, an object replaces the init values. Returns the
   * function that unregisters it.
   */
  registerCreateHook(className, fn) { return this._hook('registerCreateHook', className, fn); }

  /**
   * fn(updates, currentValues, info) before a set on a state of the class:
   * undefined goes on, null aborts, an object replaces the updates.
   */
  registerUpdateHook(className, fn) { return this._hook('registerUpdateHook', className, fn); }

  /** fn(finalValues, info) when a state of the class is deleted. */
  registerDeleteHook(className, fn) { return this._hook('registerDeleteHook', className, fn); }

  _hook(op, className, fn) {
    if (typeof className !== 'string') throw new TypeError(`Cannot execute '${op}' on ServerStateManager: argument 1 must be a class name`);
    if (typeof fn !== 'function') throw new TypeError(`Cannot execute '${op}' on ServerStateManager: argument 2 must be a function`);
    const h = { op, className, fn, unregister: null, removed: false };
    if (this._server.status === 'started') h.unregister = this._sm[op](className, fn);
    else this._hooks.push(h);
    return () => {
      h.removed = true;
      if (h.unregister) h.unregister();
    };
  }

  getClassDescription(className) { return this._sm.getClassDescription(className); }
  /** soundworks v4's name of getClassDescription. */
  getSchema(className) { return this.getClassDescription(className); }
  create(className, initValues) { return this._sm.create(className, initValues); }
  attach(...args) { return this._sm.attach(...args); }
  observe(...args) { return this._sm.observe(...args); }
  getCollection(...args) { return this._sm.getCollection(...args); }

  // start(): the classes, then the hooks (a hook needs its class)
  async _start() {
    const classes = this._classes;
    this._classes = [];
    for (const [name, description] of classes) await this._sm.defineClass(name, description);
    const hooks = this._hooks;
    this._hooks = [];
    const ready = [];
    for (const h of hooks) {
      if (h.removed) continue;
      h.unregister = this._sm[h.op](h.className, h.fn);
      ready.push(h.unregister.ready);
    }
    await Promise.all(ready);
  }
}

/**
 * The server side of a piece: a tutti client with the right to hook.
 *
 * @param {object} options
 * @param {string} options.url ws:// URL of tutti-server
 * @param {Function} [options.WebSocket] WebSocket implementation (Node: the `ws` package)
 * @param {string} [options.role='admin'] a role that may hook and define classes
 * @param {string} [options.token] that role's token (tutti-server prints the admin's at
 *   start; or give it in roles.json)
 * Other options are the Client's (reconnect, requestTimeout...).
 */
export class Server {
  constructor(options = {}) {
    if (!options || typeof options !== 'object') throw new TypeError('tutti Server: options must be an object');
    const { role = 'admin', ...rest } = options;
    /** the connection to tutti-server (a Client of tutti.js) */
    this.client = new Client({ ...rest, role });
    this.stateManager = new ServerStateManager(this);
    /** 'idle' | 'starting' | 'started' | 'stopped' */
    this.status = 'idle';
  }

  /** This node's id as soundworks names the server's: -1. */
  get id() { return -1; }

  /** Nothing to prepare before start() (soundworks' init); kept for ported code. */
  async init() {}

  /**
   * Connect, then define the classes and register the hooks given so far.
   * Rejects (and closes) when the server refuses any of them.
   */
  async start() {
    if (this.status === 'started') return;
    if (this.status !== 'idle') throw new Error(`tutti Server: cannot start when ${this.status}`);
    this.status = 'starting';
    try {
      await this.client.connect();
      await this.stateManager._start();
      this.status = 'started';
    } catch (err) {
      this.status = 'stopped';
      await this.client.stop();
      throw err;
    }
  }

  /** Close the connection: the hooks go with it (sets are no longer held for them). */
  async stop() {
    if (this.status === 'stopped') return;
    this.status = 'stopped';
    await this.client.stop();
  }
}

export default Server;
