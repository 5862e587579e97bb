/**
 * A pooled client's settings: its startup parameters with its committed SETs laid over them, and
 * the one statement that lays them on whichever server connection serves it next (see
 * SessionState.resync). SessionState decides when a SET counts; this is what it counts into.
 */
import { READING_SETTINGS, RESET_ALL_KEEPS } from '../router/setting-effects.js';
import { setConfigCall } from './startup-params.js';

/** The role setting's value for none: the session user's own privileges. */
const NO_ROLE = 'none';

export class ClientSettings {
  /**
   * In the order of their last change, which is the order they are laid on in (see sql). The
   * startup map itself until the first change (see changing): most clients never SET anything,
   * and a copy costs an idle client 184 bytes.
   */
  private values: ReadonlyMap<string, string>;
  /** The role each setting was last made under, where that was not the session user (see sql). */
  private madeAs: Map<string, string> | undefined;
  /**
   * Custom (dotted) settings reset to their placeholder value: laid on as a reset so that the
   * placeholder exists on every connection, reading '' as on the connection that ran the RESET.
   */
  // Made on first use: most clients never need it.
  private placeholders: Set<string> | undefined;
  private cachedSql: string | undefined;
  private cachedContext: string | undefined;

  constructor(private readonly startup: ReadonlyMap<string, string>) {
    this.values = startup;
  }

  /** The values, made the client's own at their first change. */
  private changing(): Map<string, string> {
    if (this.values === this.startup) this.values = new Map(this.startup);
    return this.values as Map<string, string>;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  startupValue(name: string): string | undefined {
    return this.startup.get(name);
  }

  /** The settings laid on include a role (see sql), which the server may refuse any time. */
  get switchesRole(): boolean {
    return this.madeAs !== undefined || this.values.has('role');
  }

  /** A SET committed: made under the role in force now, or `as`, a SET LOCAL ROLE's. */
  set(name: string, value: string, as?: string): void {
    const values = this.changing();
    values.delete(name);
    values.set(name, value);
    const sessionRole = this.values.get('role') ?? NO_ROLE;
    const role = as ?? sessionRole;
    // Under the session user's own privileges while the session has a role (SET LOCAL ROLE NONE):
    // recorded too, so that it is not laid on after the switch to that role (see sql).
    if (name === 'role' || (role === NO_ROLE && sessionRole === NO_ROLE)) this.forgetRole(name);
    else (this.madeAs ??= new Map()).set(name, role);
    this.placeholders?.delete(name);
    this.changed();
  }

  /** The server stored the value last set for `name` as `value`: it keeps its place and its role. */
  stored(name: string, value: string): void {
    if (!this.values.has(name) || this.values.get(name) === value) return;
    this.changing().set(name, value);
    this.changed();
  }

  /** The names of the startup settings RESET ALL resets (not the role: see RESET_ALL_KEEPS). */
  startupNames(): Set<string> {
    const names = new Set<string>();
    for (const name of this.startup.keys()) if (!RESET_ALL_KEEPS.has(name)) names.add(name);
    return names;
  }

  /** set_config of the startup value of each of `names` that has one ('all': of each), in one SELECT; '' when none has. */
  startupValuesSql(names: ReadonlySet<string> | 'all'): string {
    const calls: string[] = [];
    for (const [name, value] of this.startup) if (names === 'all' ? !RESET_ALL_KEEPS.has(name) : names.has(name)) calls.push(setConfigCall(name, value));
    return calls.length > 0 ? `SELECT ${calls.join(', ')}` : '';
  }

  /** Back to the startup value, or to the default; a custom setting keeps its placeholder. */
  reset(name: string): void {
    this.forgetRole(name);
    this.changed();
    const startupValue = this.startup.get(name);
    if (startupValue !== undefined) {
      if (this.values.get(name) !== startupValue) this.changing().set(name, startupValue);
      return;
    }
    if (this.values.has(name)) this.changing().delete(name);
    if (name.includes('.')) (this.placeholders ??= new Set()).add(name);
  }

  /** RESET ALL: every setting but those it leaves alone (the role among them). */
  resetAll(): void {
    for (const name of [...this.values.keys()]) {
      if (!RESET_ALL_KEEPS.has(name)) this.reset(name);
    }
  }

  private changed(): void {
    this.cachedSql = undefined;
    this.cachedContext = undefined;
  }

  /**
   * The reading settings the client has (see READING_SETTINGS), each as `\0name=value`, in a fixed
   * order; '' when it has none. Two statements of one text are the same statement only when read
   * under the same context (see PreparedStatements). Made once per change of the settings.
   */
  get readingContext(): string {
    if (this.cachedContext !== undefined) return this.cachedContext;
    let context = '';
    for (const name of READING_SETTINGS) {
      const value = this.values.get(name);
      if (value !== undefined) context += `\u0000${name}=${value}`;
    }
    this.cachedContext = context;
    return context;
  }

  private forgetRole(name: string): void {
    this.madeAs?.delete(name);
    if (this.madeAs?.size === 0) this.madeAs = undefined;
  }

  /**
   * One statement that brings a server connection's settings to these ('' = defaults), in the
   * order of their last change. A setting made under a SET ROLE is laid on under that role (the
   * role may hold the privilege to set it, or have dropped the session user's): the statement
   * switches role where the settings ask, and ends on the role the client has now.
   */
  get sql(): string {
    if (this.cachedSql !== undefined) return this.cachedSql;
    const calls: string[] = [];
    const madeAs = this.madeAs;
    let as = NO_ROLE;
    for (const [name, value] of this.values) {
      if (madeAs !== undefined && name === 'role') continue;
      const need = madeAs?.get(name) ?? NO_ROLE;
      if (need !== as) calls.push(setConfigCall('role', (as = need)));
      calls.push(setConfigCall(name, value));
    }
    if (madeAs !== undefined) {
      const role = this.values.get('role') ?? NO_ROLE;
      if (role !== as) calls.push(setConfigCall('role', role));
    }
    // set_config with a NULL value resets the setting, creating its placeholder as RESET does.
    if (this.placeholders !== undefined) for (const name of this.placeholders) calls.push(setConfigCall(name, null));
    this.cachedSql = calls.length > 0 ? `SELECT ${calls.join(', ')}` : '';
    return this.cachedSql;
  }
}
