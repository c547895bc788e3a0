// Types of stage.js: helpers for a piece's pages on phones (browser only; see README.md).

import type { Client, ClientOptions, SharedState, SharedStateCollection, Unsubscribe } from './tutti.js';

/** What a helper could do: ok, or why not. */
export interface Status {
  ok: boolean;
  /** null when ok; 'insecure-context': http:// on a phone (the browser hides the API); 'unsupported': the
   * browser lacks it; 'refused': the browser or the person said no; 'no-sensor': no reading came */
  reason: null | 'insecure-context' | 'unsupported' | 'refused' | 'no-sensor';
  /** for the person holding the phone (what the notice shows) */
  message: string;
  /** for the developer (also on the console) */
  detail: string;
}

/** window.isSecureContext (true where the runtime does not say). */
export declare function isSecure(): boolean;

/** Show a closable notice at the bottom of the page (and warn on the console); null without a document. */
export declare function notice(message: string, options?: { detail?: string; id?: string }): HTMLElement | null;

/** Create (or resume) an AudioContext; call it inside a tap. null without Web Audio. */
export declare function unlockAudio(context?: AudioContext | null, options?: { latencyHint?: AudioContextLatencyCategory | number }): AudioContext | null;

/** Keep the screen on (taken again whenever the page becomes visible). A failure shows a notice unless notice: false. */
export declare function keepAwake(options?: { notice?: boolean }): Promise<Status>;
/** Let the screen lock again. */
export declare function releaseAwake(): Promise<void>;

/** Ask for the motion sensors (iOS asks the person: call it inside a tap). probe: ms to wait for a first reading. */
export declare function requestMotion(options?: { notice?: boolean; probe?: number }): Promise<Status>;

export interface JoinOptions {
  /** heading of the overlay made by join() (default: document.title) */
  title?: string;
  text?: string;
  /** the button's text; default 'Tap to join' */
  label?: string;
  /** the page's own overlay and button, instead of the one join() makes */
  overlay?: HTMLElement;
  button?: HTMLElement;
  /** create (or resume this) AudioContext in the tap; default true */
  audio?: boolean | AudioContext;
  /** keepAwake() in the tap; default true */
  wakeLock?: boolean;
  /** requestMotion() in the tap; default false */
  motion?: boolean;
  /** show a notice for what cannot work; default true */
  notices?: boolean;
  /** runs inside the tap first */
  onTap?: () => void;
}

/** The "tap to join" overlay: shown at once, resolves after the tap with what it unlocked. */
export declare function join(options?: JoinOptions): Promise<{ audio: AudioContext | null; wakeLock: Status | null; motion: Status | null }>;

/** Status line texts: the client's statuses, plus 'unreachable'. */
export declare const STATUS_TEXT: Record<string, string>;

/** Show the client's status in an element (data-status, and the text of its `.text` child or itself). */
export declare function statusLine(client: Client, el: HTMLElement | null, options?: { texts?: Record<string, string> }): {
  show(status: string): void;
  off: Unsubscribe;
};

/** Connect a page to its server, waiting (and saying so) while the server is unreachable. */
export declare function connect(options?: ClientOptions & {
  status?: HTMLElement;
  client?: Client;
  /** reload the page when its session could not be resumed; default true */
  reloadOnSessionLost?: boolean;
}): Promise<Client>;

export interface Presence {
  /** this phone's state (null with join: false) */
  me: SharedState | null;
  /** every phone's state */
  collection: SharedStateCollection;
  readonly count: number;
  /** cb(count) now and on every arrival or departure */
  onChange(cb: (count: number) => void): Unsubscribe;
  /** "N phones" in an element (and data-count) */
  bindCount(el: HTMLElement, words?: [string, string]): Unsubscribe;
}

/** The phones in the room: each creates a state of the class (a schema file), everyone counts them. */
export declare function presence(client: Client, className?: string, options?: { join?: boolean; values?: Record<string, unknown> }): Promise<Presence>;

/** set(name, value) with at most one set in flight per param (the latest value waits). */
export declare function coalescer(state: SharedState): (name: string, value: unknown) => void;

/** Bind an input, checkbox or select to a param, both ways. */
export declare function bind(input: HTMLInputElement | HTMLSelectElement, state: SharedState, name: string): Unsubscribe;
