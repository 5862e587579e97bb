/** Lazy decoders: only the fields pgway needs, read straight out of a frame view. */
import { StartupCode } from './codes.js';
import { FeatureNotSupportedError, ProtocolViolationError } from '../errors.js';

/** Reads a NUL-terminated string at `offset`; returns it and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, end: number): [string, number] {
  const nul = buf.indexOf(0, offset);
  if (nul < 0 || nul >= end) throw new ProtocolViolationError('invalid string in message');
  return [buf.toString('utf8', offset, nul), nul + 1];
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter type (C = SQLSTATE, M = message). */
export function decodeErrorFields(frame: Buffer, start: number, end: number): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = start + 5;
  while (pos < end && frame[pos] !== 0) {
    const type = String.fromCharCode(frame[pos]!);
    const [value, next] = readCString(frame, pos + 1, end);
    fields.set(type, value);
    pos = next;
  }
  return fields;
}

export function decodeParameterStatus(frame: Buffer, start: number, end: number): [string, string] {
  const [name, next] = readCString(frame, start + 5, end);
  const [value] = readCString(frame, next, end);
  return [name, value];
}

/**
 * Value `index` (from 0) of the format codes and values that begin at `at` in a Bind or a
 * FunctionCall: a view of its bytes and whether they are in binary format, null for NULL,
 * undefined when the frame is malformed.
 */
function valueAt(buf: Buffer, at: number, end: number, index: number): { bytes: Buffer; binary: boolean } | null | undefined {
  if (at + 2 > end) return undefined;
  const formats = buf.readInt16BE(at);
  const formatsAt = at + 2;
  at = formatsAt + 2 * formats;
  if (formats < 0 || at + 2 > end) return undefined;
  const values = buf.readInt16BE(at);
  at += 2;
  if (index >= values || (formats > 1 && index >= formats)) return undefined;
  const binary = formats > 0 && buf.readInt16BE(formatsAt + 2 * (formats === 1 ? 0 : index)) !== 0;
  for (let i = 0; ; i++) {
    if (at + 4 > end) return undefined;
    const length = buf.readInt32BE(at);
    at += 4;
    if (i === index) {
      if (length < 0) return null;
      return at + length <= end ? { bytes: buf.subarray(at, at + length), binary } : undefined;
    }
    if (length > 0) at += length;
  }
}

/** Argument `index` (from 0) of a FunctionCall frame (see valueAt). */
export function functionCallArgument(buf: Buffer, start: number, end: number, index: number): { bytes: Buffer; binary: boolean } | null | undefined {
  return valueAt(buf, start + 9 /* past the function's OID */, end, index);
}

/** The row count a CommandComplete frame's tag ends with (`SELECT 3`: 3); 0 for a tag without one. */
export function commandRows(frame: Buffer, start: number, end: number): number {
  const tag = frame.toString('latin1', start + 5, end - 1);
  const rows = Number(tag.slice(tag.lastIndexOf(' ') + 1));
  return Number.isInteger(rows) ? rows : 0;
}

/** The first column of a DataRow frame as text; undefined for NULL or a malformed frame. */
export function dataRowFirstText(frame: Buffer, start: number, end: number): string | undefined {
  if (start + 11 > end || frame.readInt16BE(start + 5) < 1) return undefined;
  const length = frame.readInt32BE(start + 7);
  return length < 0 || start + 11 + length > end ? undefined : frame.toString('utf8', start + 11, start + 11 + length);
}

/**
 * The text of parameter `index` (from 0) of a Bind frame whose statement name starts at `at`: null
 * for NULL, undefined when it is not in text format or the frame is malformed.
 */
export function bindParameterText(buf: Buffer, at: number, end: number, index: number): string | null | undefined {
  at = buf.indexOf(0, at) + 1;
  if (at <= 0) return undefined;
  const value = valueAt(buf, at, end, index);
  return value == null ? value : value.binary ? undefined : value.bytes.toString('utf8');
}

/** How many parameter values a Bind frame (statement name at `at`) sends; -1 when it is malformed there. */
export function bindValueCount(buf: Buffer, at: number, end: number): number {
  at = buf.indexOf(0, at) + 1;
  if (at <= 0 || at + 2 > end) return -1;
  const formats = buf.readInt16BE(at);
  const valuesAt = at + 2 + 2 * formats;
  return formats >= 0 && valuesAt + 2 <= end ? buf.readInt16BE(valuesAt) : -1;
}

/**
 * Whether a Bind frame (statement name at `at`) sends a parameter in binary format; true for a
 * malformed frame, which the server refuses anyway.
 */
export function bindHasBinaryParameters(buf: Buffer, at: number, end: number): boolean {
  at = buf.indexOf(0, at) + 1;
  if (at <= 0 || at + 2 > end) return true;
  const formats = buf.readInt16BE(at);
  if (formats < 0 || at + 4 + 2 * formats > end) return true;
  let binary = false;
  for (let i = 0; i < formats; i++) if (buf.readInt16BE(at + 2 + 2 * i) !== 0) binary = true;
  return binary && buf.readInt16BE(at + 2 + 2 * formats) > 0;
}

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; minor: number; params: Map<string, string>; protocolOptions: string[] };

/** PostgreSQL's answer to a protocol version it does not speak (pgway speaks 3.0; it negotiates 3.x down to it). */
export function unsupportedProtocol(major: number, minor: number): FeatureNotSupportedError {
  return new FeatureNotSupportedError(`unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`);
}

/**
 * Decodes a whole startup-phase packet (length included). Throws ProtocolViolationError, or
 * FeatureNotSupportedError for a protocol version other than 3.x.
 */
export function decodeStartupPacket(packet: Buffer): StartupPacket {
  if (packet.length < 8) throw new ProtocolViolationError('invalid startup packet length');
  const code = packet.readInt32BE(4);
  switch (code) {
    case StartupCode.SSLRequest:
      return { kind: 'ssl' };
    case StartupCode.GSSENCRequest:
      return { kind: 'gssenc' };
    case StartupCode.CancelRequest:
      if (packet.length < 16) throw new ProtocolViolationError('invalid cancel request');
      return { kind: 'cancel', pid: packet.readInt32BE(8), secret: packet.readUInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) throw unsupportedProtocol(major, minor);
  const params = new Map<string, string>();
  const protocolOptions: string[] = [];
  let pos = 8;
  while (pos < packet.length && packet[pos] !== 0) {
    const [name, afterName] = readCString(packet, pos, packet.length);
    const [value, afterValue] = readCString(packet, afterName, packet.length);
    if (name.startsWith('_pq_.')) protocolOptions.push(name);
    else params.set(name, value);
    pos = afterValue;
  }
  if (pos !== packet.length - 1) throw new ProtocolViolationError('invalid startup packet layout: missing terminator');
  return { kind: 'startup', minor, params, protocolOptions };
}
