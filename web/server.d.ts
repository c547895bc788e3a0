// Types of server.js: a piece's server side in Node, with soundworks' names (see README.md).
import type { ClientOptions, ClassDescription, Values, HookInfo, HookResult, Client, StateManager } from './tutti.js';

export { TuttiError, ErrorCode } from './tutti.js';

export interface ServerOptions extends ClientOptions {
  /** ws:// URL of tutti-server */
  url: string;
  /** a role that may hook and define classes; default 'admin' */
  role?: string;
  /** that role's token (tutti-server prints the admin's at start) */
  token?: string;
}

/** create, attach, observe, getCollection, getClassDescription, deleteClass: as the Client's. */
export interface ServerStateManager extends Pick<StateManager, 'getClassDescription' | 'create' | 'attach' | 'observe' | 'getCollection' | 'deleteClass'> {}
export declare class ServerStateManager {
  /** Before start(): kept and sent by start(). After: resolves true (new) or false (identical existed). */
  defineClass(className: string, description: ClassDescription): Promise<boolean | null>;
  registerSchema(className: string, description: ClassDescription): Promise<boolean | null>;
  isClassDefined(className: string): Promise<boolean>;
  deleteSchema(className: string): Promise<void>;
  getSchema(className: string): Promise<ClassDescription>;
  /** Each returns the function that unregisters the hook. */
  registerCreateHook(className: string, fn: (initValues: Values, info: HookInfo) => HookResult | Promise<HookResult>): () => void;
  registerUpdateHook(className: string, fn: (updates: Values, currentValues: Values, info: HookInfo) => HookResult | Promise<HookResult>): () => void;
  registerDeleteHook(className: string, fn: (finalValues: Values, info: HookInfo) => unknown): () => void;
}

export declare class Server {
  constructor(options: ServerOptions);
  /** the connection to tutti-server */
  readonly client: Client;
  readonly stateManager: ServerStateManager;
  status: 'idle' | 'starting' | 'started' | 'stopped';
  /** soundworks' id of the server: -1 */
  readonly id: -1;
  init(): Promise<void>;
  /** Connect, define the classes, register the hooks; rejects when the server refuses any. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export default Server;
