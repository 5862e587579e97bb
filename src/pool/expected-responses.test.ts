import { describe, expect, it } from 'vitest';
import { Backend } from '../wire/codes.js';
import { Action, COPY_ENDED, ExpectedResponses, Slot, SYNC_AFTER_DATA } from './expected-responses.js';

const drain = (q: ExpectedResponses): [number, number, unknown][] => {
  const out: [number, number, unknown][] = [];
  while (q.length > 0) {
    out.push([q.headKind, q.headAction, q.headExtra]);
    q.shift();
  }
  return out;
};

describe('ExpectedResponses', () => {
  it('keeps slots in order through wrap-around and growth', () => {
    const q = new ExpectedResponses();
    // Move the head forward so later slots wrap around the end of the ring.
    for (let i = 0; i < 10; i++) q.push(Slot.Query);
    for (let i = 0; i < 10; i++) q.shift();
    const pushed: [number, number, unknown][] = [];
    for (let i = 0; i < 40; i++) {
      const entry: [number, number, unknown] = i % 3 === 0 ? [Slot.Parse, Action.Swallow, `s${i}`] : [Slot.Bind, Action.Forward, undefined];
      q.push(entry[0] as Slot, entry[1] as Action, entry[2] as string | undefined);
      pushed.push(entry);
    }
    expect(q.length).toBe(40);
    expect(q.special).toBe(14);
    expect(drain(q)).toEqual(pushed);
    expect(q.special).toBe(0);
    expect(q.headKind).toBe(0);
  });

  it('at a COPY\'s start, tells a Sync sent after some of its data from one sent before any', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Execute);
    q.push(Slot.Sync);
    expect(q.beginCopyIn() & SYNC_AFTER_DATA).toBe(0);
    expect(q.syncsIgnored).toBe(1);
    q.shift();
    q.push(Slot.Query);
    q.noteCopyData();
    q.noteCopyData();
    q.push(Slot.Sync);
    q.push(Slot.CopyEnd);
    q.push(Slot.Query);
    const sent = q.beginCopyIn();
    expect(sent & SYNC_AFTER_DATA).toBe(SYNC_AFTER_DATA);
    expect(sent & COPY_ENDED).toBe(COPY_ENDED);
    expect(q.syncsIgnored).toBe(1);
    expect(drain(q).map(([kind]) => kind)).toEqual([Slot.Query, Slot.Query]);
  });

  it('drops the extended-protocol slots up to the next Sync after an error, synthesized ones too', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Parse, Action.Forward, 'a');
    q.push(Slot.Bind, Action.Synthesize, Buffer.from('x'));
    q.push(Slot.Execute);
    q.push(Slot.Sync);
    q.push(Slot.Query);
    const dropped: unknown[] = [];
    q.failHead((extra, kind) => dropped.push([kind, extra]));
    // Last first: changes are taken back in the reverse of the order they were made.
    expect(dropped).toEqual([[Slot.Execute, undefined], [Slot.Bind, Buffer.from('x')], [Slot.Parse, 'a']]);
    expect(q.special).toBe(0);
    expect(drain(q).map(([kind]) => kind)).toEqual([Slot.Sync, Slot.Query]);
  });

  it('after an error with no Sync queued, the messages sent until the Sync owe nothing', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Parse);
    q.push(Slot.Describe); // then Flush: the client waits for ParameterDescription before Bind
    const dropped: unknown[] = [];
    q.failHead((extra, kind) => dropped.push(kind));
    expect(dropped).toEqual([Slot.Describe, Slot.Parse]);
    // Sent after the error: the server discards them, a Query among them.
    expect([q.push(Slot.Bind), q.push(Slot.Execute, Action.Synthesize, Buffer.from('x')), q.push(Slot.Query)]).toEqual([false, false, false]);
    expect(q.special).toBe(0);
    expect(q.push(Slot.Sync)).toBe(true);
    expect(q.push(Slot.Bind)).toBe(true);
    expect(drain(q).map(([kind]) => kind)).toEqual([Slot.Sync, Slot.Bind]);
  });

  it('after an extended-protocol error, a Query before the Sync is skipped by the server too', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Execute);
    q.push(Slot.Query);
    q.push(Slot.Sync);
    q.failHead(() => undefined);
    expect(drain(q).map(([kind]) => kind)).toEqual([Slot.Sync]);
  });

  it('an error owed to no slot (a FATAL while idle) changes nothing', () => {
    const q = new ExpectedResponses();
    q.failHead(() => undefined);
    expect([q.length, q.push(Slot.Query)]).toEqual([0, true]);
  });

  it('a failed Query keeps its slot: its ReadyForQuery still comes', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Query);
    q.failHead(() => undefined);
    expect(q.length).toBe(1);
    expect(q.endsHead(Backend.ReadyForQuery)).toBe(true);
    expect(q.endsHead(Backend.CommandComplete)).toBe(false);
  });

  it('a COPY IN drops the Syncs sent before its end and keeps those after it', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Execute); // COPY ... FROM STDIN
    q.push(Slot.Sync); // sent with the Execute: ignored by the server in COPY mode
    q.push(Slot.CopyEnd);
    q.push(Slot.Sync); // after CopyDone: answered
    q.beginCopyIn();
    expect(drain(q).map(([kind]) => kind)).toEqual([Slot.Execute, Slot.Sync]);
  });

  it('a COPY end with no COPY before it is passed over', () => {
    const q = new ExpectedResponses();
    q.push(Slot.Query);
    q.push(Slot.CopyEnd);
    q.push(Slot.Query);
    q.shift();
    expect(q.length).toBe(1);
    q.shift();
    expect(q.length).toBe(0);
  });

  it('drops later Syncs only (COPY IN), across the ring boundary', () => {
    const q = new ExpectedResponses();
    for (let i = 0; i < 14; i++) q.push(Slot.Query);
    for (let i = 0; i < 14; i++) q.shift();
    q.push(Slot.Query);
    q.push(Slot.Sync, Action.Swallow);
    q.push(Slot.Parse, Action.Forward, 'p');
    q.push(Slot.Sync);
    q.push(Slot.Close, Action.Synthesize, Buffer.from('c'));
    q.beginCopyIn();
    expect(q.special).toBe(1);
    expect(drain(q)).toEqual([[Slot.Query, Action.Forward, undefined], [Slot.Parse, Action.Forward, 'p'], [Slot.Close, Action.Synthesize, Buffer.from('c')]]);
  });
});
