// Types of tutti.js, the JavaScript client of tutti (see README.md and shared/PROTOCOL.md).

export declare const PROTOCOL: 'tutti.v1';
export declare const VERSION: 1;

export declare const MSG: Readonly<{
  HELLO: 1; DEFINE: 2; CREATE: 3; ATTACH: 4; DETACH: 5; DELETE: 6; SET: 7;
  OBSERVE: 8; UNOBSERVE: 9; HISTORY: 10; DESCRIBE: 11; PING: 12; CANCEL: 13;
  HOOK: 14; UNHOOK: 15; HOOK_REPLY: 16; DELETE_CLASS: 17; SYNC_REPORT: 18; INSPECT: 19; KICK: 20;
  RESULT: 64; ERROR: 65; UPDATE: 66; DELETED: 67; NOTICE: 68; PONG: 69; SNAPSHOT: 70; SCHEDULED: 71; CANCELLED: 72;
  HOOK_CALL: 73; CLASS_CHANGED: 74; ROOM: 75;
}>;

/** Server codes (positive, PROTOCOL.md §11) and client-only codes (negative). */
export declare const ErrorCode: Readonly<{
  BAD_MESSAGE: 1; UNKNOWN_TYPE: 2; NOT_READY: 3; BAD_VERSION: 4; BAD_REQUEST: 5;
  UNKNOWN_CLASS: 10; CLASS_EXISTS: 11; BAD_DESCRIPTION: 12;
  UNKNOWN_STATE: 20; UNKNOWN_INSTANCE: 21; NOT_OWNER: 22; UNKNOWN_SCHEDULE: 23; UNKNOWN_SESSION: 24;
  UNKNOWN_PARAM: 30; BAD_VALUE: 31; NOT_NULLABLE: 32; REQUIRED: 33; LOCAL_PARAM: 34;
  FILTERED: 35; BAD_FILTER: 36;
  LIMIT: 40; RATE_LIMIT: 41; FORBIDDEN: 42; UNAUTHORIZED: 43; ABORTED: 44; HOOK_FAILED: 45; INTERNAL: 60; STORAGE: 61;
  DISCONNECTED: -1; TIMEOUT: -2; DETACHED: -3; CLOSED: -4;
}>;

/** WebSocket close codes the server uses (PROTOCOL.md §12). */
export declare const CloseCode: Readonly<{
  GOING_AWAY: 1001; TOO_BIG: 1009; RESYNC: 1012; SLOW_CONSUMER: 4001; PROTOCOL_ERRORS: 4002; UNAUTHORIZED: 4003; TAKEN_OVER: 4004;
  KICKED: 4005;
}>;

export declare class TuttiError extends Error {
  constructor(code: number, message: string);
  name: 'TuttiError';
  /** numeric code: the server's when the error came from an ERROR message */
  code: number;
  /** e.g. 'UNKNOWN_PARAM' */
  codeName: string;
}

/** A msgpack value as the client reads it: ints beyond ±2^53 are bigint. */
export type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | { [key: string]: Value };
export type Values = Record<string, Value>;

export type ParamType = 'boolean' | 'string' | 'integer' | 'float' | 'enum' | 'any';

export interface ParamDescription {
  type: ParamType;
  default?: Value;
  nullable?: boolean;
  event?: boolean;
  required?: boolean;
  filterChange?: boolean;
  /** a slow client may get only the latest of several updates (PROTOCOL.md §6b); not with event */
  conflate?: boolean;
  immediate?: boolean;
  acknowledge?: boolean;
  local?: boolean;
  /** integer and float; unbounded: -Infinity / +Infinity (as given: also null or absent) */
  min?: number | null;
  max?: number | null;
  /** in a state's description (getDescription): the value the state was created with */
  initValue?: Value;
  /** enum only */
  list?: Value[];
  metas?: Record<string, Value>;
  [extra: string]: unknown;
}
export type ClassDescription = Record<string, ParamDescription>;

/** An event of a state's history. */
export interface HistoryEvent {
  seq: number;
  /** server sync time, seconds */
  time: number;
  changes: Values;
  /** session that wrote it (0: the server) */
  origin: number;
}

export interface Welcome {
  session: number;
  token: string;
  /** the role the server gave the session */
  role: string;
  time: number;
  resumed: boolean;
  maxMessage: number;
  resumeWindow: number;
}

export type Status = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Third argument of onUpdate listeners. */
export interface UpdateContext {
  /** the state's seq after this update */
  seq: number;
  /** server sync time at which the update was applied (seconds); compare with client.getSyncTime() */
  time: number;
  source: 'update' | 'set' | 'immediate' | 'local' | 'snapshot' | 'initial' | 'revert' | 'scheduled';
  /** the schedule id, for a scheduled set (PROTOCOL.md §6a) */
  schedId?: number;
}

export interface ClientOptions {
  /** ws:// URL; in a browser defaults to ws(s)://<page host>/ */
  url?: string;
  /** a WebSocket class (Node: `import WebSocket from 'ws'`); defaults to globalThis.WebSocket */
  WebSocket?: any;
  /** reconnect (and resume the session) when the connection drops; default true.
   * An object bounds it: { maxAttempts, backoffMin, backoffMax } */
  reconnect?: boolean | { maxAttempts?: number; backoffMin?: number; backoffMax?: number };
  /** connection attempts in a row after which the client gives up: status 'closed', event
   * 'giveup', pending promises reject; default Infinity */
  maxReconnectAttempts?: number;
  /** ms; first and longest reconnection delays (exponential backoff with jitter); 250 / 8000 */
  backoffMin?: number;
  backoffMax?: number;
  /** ms; connect() rejects (TIMEOUT) when the first session is not up by then, and the client closes
   * (unless keepTrying); default 10000, 0: wait forever */
  connectTimeout?: number;
  /** after connectTimeout on the first connection, keep trying in the background: 'open' fires when
   * the server comes, and connect() called again waits for it; default false */
  keepTrying?: boolean;
  /** ms; a request without reply rejects with TIMEOUT; default 30000, 0: never */
  requestTimeout?: number;
  /** ms between PINGs (clock sync, liveness); default 5000 */
  pingInterval?: number;
  /** ms without any message from the server before the connection is deemed dead; default 15000, 0: never */
  heartbeatTimeout?: number;
  /** validate and coerce values locally before sending; default true */
  validate?: boolean;
  /** the local clock of getSyncTime/getLocalTime, seconds (default performance.now()/1000) */
  getTime?: () => number;
  /** options of the clock estimator (web/sync.js), or false for the quick estimate only */
  sync?: Record<string, unknown> | false;
  /** the role to take (roles.json); in a browser, default: the page's `#role=...` fragment */
  role?: string;
  /** that role's token; in a browser, default: the page's `#...&token=...` fragment */
  token?: string;
  /** tell the server how well this client's clock is synchronised (SYNC_REPORT, at most once a second); default true */
  syncReports?: boolean;
}

/** One second of the room (PROTOCOL.md §8b); rates per second. */
export interface RoomSample {
  /** sync time */
  t: number;
  updates: number; messagesIn: number; messagesOut: number; bytesIn: number; bytesOut: number;
  /** connected sessions */
  connections: number;
  /** connected clients with a recent clock-sync report */
  reporting: number;
  /** of them, how many report an offset error within 1, 2, 5 and 10 ms */
  within: [number, number, number, number];
}

/** A session as the inspector sees it. */
export interface RoomSession {
  id: number; role: string; address: string | null; connected: boolean;
  /** several nodes: the node holding it (its address, queue, rates and sync are that node's); null with one server */
  node: number | null;
  /** seconds since its connection went (resuming), null while connected */
  goneFor: number | null;
  owned: number; instances: number; queueBytes: number;
  /** protocol messages per second */
  messagesIn: number; messagesOut: number;
  /** its last clock-sync report (seconds), null without a recent one */
  sync: { status: 'startup' | 'training' | 'sync'; error: number; drift: number; roundTrip: number; age: number } | null;
  inspecting: boolean;
}

/** The ROOM push, and inspect()'s result (with `history`). */
export interface Room {
  time: number; uptime: number;
  /** several nodes: the node that sends this room; null with one server */
  node: number | null;
  connections: number; sessions: number; resuming: number; states: number; classes: number;
  scheduled: number; inspectors: number; queueBytes: number; databaseBytes: number;
  /** why the database cannot be written, or null */
  storage: string | null;
  sample: RoomSample;
  sessionRows: RoomSession[];
  /** [stateId, className, ownerSession, seq, subscribers, pendingScheduled] */
  stateRows: Array<[number, string, number, number, number, number]>;
  /** every class: [className, states] */
  classRows: Array<[string, number]>;
  sessionsListed: number; statesListed: number;
  /** inspect()'s result only: the samples of the last ten minutes, oldest first */
  history?: RoomSample[];
}

/** {role, token} from a page's URL fragment (`#role=conductor&token=...`). */
export declare function roleFromLocation(loc?: { hash: string } | null): { role?: string; token?: string };

export type Unsubscribe = () => void;

/** The part of web/sync.js's SyncEstimator the client exposes. */
export interface SyncEstimatorLike {
  getSyncTime(localTime?: number): number;
  getLocalTime(syncTime?: number): number;
  getReport(): Record<string, any>;
  onReport(cb: (report: Record<string, any>) => void): () => void;
}

export declare class Client {
  constructor(options?: ClientOptions);
  readonly url: string;
  status: Status;
  /** session id (0 before the first welcome) */
  session: number;
  /** soundworks' name: this client's node id (its session id), null before the first welcome */
  readonly id: number | null;
  /** the session's resume token */
  token: string | null;
  /** the session's role (from the welcome), null before it */
  role: string | null;
  welcome: Welcome | null;
  /** the server's --max-message */
  maxMessage: number;
  stateManager: StateManager;
  /** syncTime = localTime + syncOffset (seconds) */
  syncOffset: number;
  /** travel time of the best PING (seconds) */
  syncTravel: number;
  /** the clock estimator (web/sync.js), used once its first series is done; null with sync: false */
  sync: SyncEstimatorLike | null;
  /** the estimator's report, or null */
  getSyncReport(): Record<string, unknown> | null;
  /** counters: WebSocket messages (frames) and protocol messages; requestsOut excludes PINGs */
  stats: { framesOut: number; messagesOut: number; requestsOut: number; framesIn: number; messagesIn: number };

  /** Connect and say HELLO; resolves with the welcome. */
  connect(): Promise<Welcome>;
  /** soundworks' names: connect */
  init(): Promise<void>;
  start(): Promise<void>;
  /** soundworks' name: close, resolved once the WebSocket closed (at most `timeout` ms) */
  stop(options?: { timeout?: number }): Promise<void>;
  /** Close for good: the session ends at once (the states it created are deleted); pending requests reject with CLOSED; no timer is left running. */
  close(): void;
  /** Drop the connection as a network failure would (the client reconnects and resumes). */
  dropConnection(): void;
  /** The local clock in seconds (performance.now()), or the local time of a sync time. */
  getLocalTime(syncTime?: number): number;
  /** The server's sync clock in seconds, now or at a local time. */
  getSyncTime(localTime?: number): number;
  /**
   * Can a sound still be heard at sync time `at`? (Ask when a scheduled set arrives.)
   * outputLatency: audioOutputLatency(ctx) or an assumed value; margin (0.005 s): main thread to audio thread.
   */
  planAt(at: number, options?: { outputLatency?: number; margin?: number }): Plan;
  /** Admin roles: the room now (with `history`), then 'room' once a second until stopInspecting(). */
  inspect(options?: { sessions?: number; states?: number }): Promise<Room>;
  stopInspecting(): Promise<void>;
  /** Admin roles: end a session now (its connection closes with 4005, its states are deleted). */
  kick(sessionId: number): Promise<void>;

  on(event: 'status', cb: (status: Status) => void): Unsubscribe;
  on(event: 'open' | 'resumed' | 'sessionlost', cb: (welcome: Welcome) => void): Unsubscribe;
  on(event: 'close', cb: (info: { code: number; reason: string }) => void): Unsubscribe;
  on(event: 'sync', cb: (info: { offset: number; travel: number }) => void): Unsubscribe;
  on(event: 'syncreport', cb: (report: Record<string, any>) => void): Unsubscribe;
  /** A scheduled set became known (its listeners fire at `at`, never before); lead: sync seconds left until `at` (< 0: late). */
  on(event: 'scheduled', cb: (info: { stateId: number; schedId: number; at: number; changes: Record<string, any>; lead: number }) => void): Unsubscribe;
  /** A class has a new description (its schema file changed): its states here took it. */
  on(event: 'classchanged', cb: (info: { className: string; description: ClassDescription }) => void): Unsubscribe;
  /** A pending scheduled set was cancelled before it applied here. */
  on(event: 'cancelled', cb: (info: { stateId: number; schedId: number }) => void): Unsubscribe;
  /** maxReconnectAttempts reached: the client closed. */
  on(event: 'giveup', cb: (info: { attempts: number }) => void): Unsubscribe;
  /** Once a second while inspect() is on. */
  on(event: 'room', cb: (room: Room) => void): Unsubscribe;
  on(event: string, cb: (...args: any[]) => void): Unsubscribe;
  once(event: string, cb: (...args: any[]) => void): Unsubscribe;
  off(event: string, cb: (...args: any[]) => void): void;
}

export interface AttachOptions {
  /** only these params are sent to, and settable through, this instance */
  filter?: string[] | null;
  /** also get the last N events (state.history) */
  history?: number;
  /** also get every event with seq > since (state.history) */
  since?: number;
}

export interface ObserveOptions {
  /** skip states owned by this client */
  excludeLocal?: boolean;
  /** called for every state deleted afterwards */
  onDelete?: (className: string, stateId: number, nodeId: number) => unknown;
}

/** Last argument of hooks: which state (null at create) of which class. */
export interface HookInfo {
  className: string;
  stateId: number | null;
  kind: 'create' | 'update' | 'delete';
}

/** What a hook returns: nothing (go on unchanged), null (abort), or the values to go on with. */
export type HookResult = Values | null | undefined | void;

/** Unregisters a hook; `ready` settles when the server accepted it (rejects FORBIDDEN, UNKNOWN_CLASS...). */
export interface HookHandle {
  (): void;
  ready: Promise<void>;
}

export declare class StateManager {
  /** Resolves true when the class is new, false when an identical one existed; rejects CLASS_EXISTS otherwise. */
  defineClass(className: string, description: ClassDescription): Promise<boolean>;
  /** The expanded description (every option filled in). */
  getClassDescription(className: string): Promise<ClassDescription>;
  create(className: string, initValues?: Values): Promise<SharedState>;
  attach(className: string, stateId?: number | null, filterOrOptions?: string[] | AttachOptions | null): Promise<SharedState>;
  attach(className: string, filterOrOptions: string[] | AttachOptions): Promise<SharedState>;
  /** Resolves (after the callbacks for the existing states resolved) with unobserve().
   * nodeId: the creator's client id (its session), -1 for a state the server owns. */
  observe(callback: (className: string, stateId: number, nodeId: number) => unknown, options?: ObserveOptions): Promise<() => Promise<void>>;
  observe(className: string | null, callback: (className: string, stateId: number, nodeId: number) => unknown, options?: ObserveOptions): Promise<() => Promise<void>>;
  getCollection(className: string, filter?: string[] | null, options?: { excludeLocal?: boolean }): Promise<SharedStateCollection>;
  getCollection(className: string, options: { excludeLocal?: boolean }): Promise<SharedStateCollection>;
  /** Hooks (PROTOCOL.md §8a; a role with the right: admin, or "hooks": true). A throw aborts with its message. */
  registerCreateHook(className: string, fn: (initValues: Values, info: HookInfo) => HookResult | Promise<HookResult>): HookHandle;
  registerUpdateHook(className: string, fn: (updates: Values, currentValues: Values, info: HookInfo) => HookResult | Promise<HookResult>): HookHandle;
  /** Cannot prevent the delete; an explicit delete() waits for it. */
  registerDeleteHook(className: string, fn: (finalValues: Values, info: HookInfo) => unknown): HookHandle;
  /** Delete a class on the running server (admin): its states go, attached clients get onDetach. */
  deleteClass(className: string): Promise<void>;
  /** Delete a state through an attached instance, for a non-owner that may (an admin, or the class's delete right). */
  deleteState(state: SharedState): Promise<void>;
}

export declare class SharedState {
  readonly id: number;
  readonly instanceId: number;
  readonly className: string;
  /** true for the instance returned by create() */
  readonly isOwner: boolean;
  /** session id of the owner (0: the server) */
  readonly ownerSession: number;
  readonly filter: string[] | null;
  /** seq of the last update seen */
  seq: number;
  /** server time of the last update seen */
  time: number;
  /** with attach({history}) / attach({since}): the events, oldest first; else null */
  history: HistoryEvent[] | null;
  historyComplete: boolean | null;
  readonly detached: boolean;

  get(name: string): Value;
  getUnsafe(name: string): Value;
  getValues(): Values;
  getValuesUnsafe(): Values;
  getDescription(): ClassDescription;
  getDescription(name: string): ParamDescription;
  /** The default values; a `required` param's is the value given at creation. */
  getDefaults(): Values;
  /** The values the state was created with (given to create(), else the defaults). */
  getInitValues(): Values;
  /** Resolves, after this instance's async listeners, with the applied changes (or, when nothing
   * changed, the requested values) and the local / acknowledge:false keys; rejects with a TuttiError. */
  set(updates: Values): Promise<Values>;
  /** A scheduled set: takes effect at sync time `at` on every client (listeners fire then, source 'scheduled'); resolves once the server accepted it. */
  set(updates: Values, options: { at: number }): Promise<Values>;
  set(name: string, value: Value): Promise<Values>;
  onUpdate(cb: (newValues: Values, oldValues: Values, context: UpdateContext) => unknown, executeListener?: boolean): Unsubscribe;
  /** reason: 'detached' | 'deleted' | 'owner left' | 'class deleted' | 'session lost' */
  onDetach(cb: (reason: string) => unknown): Unsubscribe;
  /** owner only */
  onDelete(cb: (reason: string) => unknown): Unsubscribe;
  /** the owner's detach deletes the state */
  detach(): Promise<SharedState>;
  /** owner only */
  delete(): Promise<SharedState>;
  getHistory(opts?: { last?: number; since?: number }): Promise<{ events: HistoryEvent[]; complete: boolean }>;
  /** Cancel a pending scheduled set (its writer, the state's owner or an admin may). schedId: the
   * non-enumerable `schedId` of a scheduled set()'s result, or of the client's 'scheduled' event. */
  cancel(schedId: number): Promise<void>;
}

export declare class SharedStateCollection implements Iterable<SharedState> {
  readonly className: string;
  readonly size: number;
  readonly length: number;
  getDescription(): ClassDescription;
  getDescription(name: string): ParamDescription;
  getDefaults(): Values;
  getValues(): Values[];
  getValuesUnsafe(): Values[];
  get(name: string): Value[];
  getUnsafe(name: string): Value[];
  set(updates: Values): Promise<Values[]>;
  set(name: string, value: Value): Promise<Values[]>;
  onUpdate(cb: (state: SharedState, newValues: Values, oldValues: Values, context: UpdateContext) => unknown, executeListener?: boolean): Unsubscribe;
  onAttach(cb: (state: SharedState) => unknown, executeListener?: boolean): Unsubscribe;
  onDetach(cb: (state: SharedState) => unknown): Unsubscribe;
  onChange(cb: () => unknown, executeListener?: boolean): Unsubscribe;
  detach(): Promise<void>;
  [Symbol.iterator](): Iterator<SharedState>;
  forEach(fn: (state: SharedState, index: number) => void): void;
  map<T>(fn: (state: SharedState, index: number) => T): T[];
  filter(fn: (state: SharedState, index: number) => boolean): SharedState[];
  find(fn: (state: SharedState, index: number) => boolean): SharedState | undefined;
  reduce<T>(fn: (acc: T, state: SharedState, index: number) => T, init: T): T;
  sort(fn: (a: SharedState, b: SharedState) => number): this;
}

export declare function encode(value: unknown): Uint8Array;
export declare function decodeAll(bytes: Uint8Array): unknown[];
export declare function deepEqual(a: unknown, b: unknown): boolean;
export declare function expandParam(d: ParamDescription): ParamDescription;
export declare function coerce(className: string, name: string, p: ParamDescription, value: unknown): Value;

/** What planAt() says about a sync time. */
export interface Plan {
  at: number;
  /** `at` on the local clock (getLocalTime(at)) */
  localTime: number;
  /** seconds from now until `at` */
  lead: number;
  /** lead - outputLatency - margin */
  slack: number;
  /** slack >= 0: a sound scheduled now is heard at `at`; else late by -slack (or skip it) */
  onTime: boolean;
}

/** The output latency of a running AudioContext (seconds) where the browser reports it, else null. */
export function audioOutputLatency(ctx: { state: string; currentTime: number; baseLatency?: number; outputLatency?: number;
  getOutputTimestamp?: () => { contextTime?: number; performanceTime?: number } } | null | undefined): number | null;

export default Client;
