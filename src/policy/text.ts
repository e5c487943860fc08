/**
 * Strict reading of policy text (YAML 1.2 or JSON) into plain JavaScript values.
 *
 * A policy is security configuration, so the reader refuses everything that could make one
 * document mean two things or hide what it says:
 * - YAML 1.2 with the core schema only; no explicit tags (`!!binary`, `!custom`), no anchors
 *   or aliases, no merge keys, one document per text;
 * - mapping keys are strings or canonical decimal integers (`7`, not `07` or `0x7`), and two
 *   keys that become the same JavaScript property (`"0"` and `0`) are a duplicate;
 * - JSON must parse as JSON (RFC 8259) and is then read with the same duplicate-key rule.
 *
 * Every refusal is a `ParseError` with code POLICY_INVALID (category 'malformed', HTTP 400):
 * a policy that does not parse is malformed input, like any other document vouch reads.
 */
import { Document, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { ParseError } from '../lib/errors.js';

/** Largest policy text accepted, in UTF-16 code units (a policy is a few kilobytes). */
export const POLICY_MAX_CHARS = 1 << 20;

/** Deepest nesting a policy may have (the schema needs 5). */
const MAX_DEPTH = 16;

/** Source formats a policy may be written in. */
export type PolicyFormat = 'yaml' | 'json';

function invalid(message: string, field?: string): ParseError {
  return new ParseError('POLICY_INVALID', message, field === undefined ? {} : { field });
}

/** JSON-pointer segment escaping (RFC 6901 §3). */
export function pointerSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Reads policy text into a plain value (objects, arrays, strings, numbers, booleans, null).
 * @throws ParseError POLICY_INVALID
 */
export function readPolicyText(text: string, format: PolicyFormat): unknown {
  if (typeof text !== 'string') throw invalid('policy text must be a string');
  if (text.length > POLICY_MAX_CHARS) throw invalid(`policy text exceeds ${POLICY_MAX_CHARS} characters`);
  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch (e) {
      throw invalid(`policy is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else if (format !== 'yaml') {
    throw invalid(`unknown policy format ${JSON.stringify(format)}; use 'yaml' or 'json'`);
  }
  // JSON is a subset of YAML 1.2, so one strict tree walk serves both formats; for JSON it
  // adds only the duplicate-key check that JSON.parse lacks.
  const doc = parseDocument(text, {
    version: '1.2',
    schema: format === 'json' ? 'json' : 'core',
    customTags: [],
    merge: false,
    uniqueKeys: true,
    strict: true,
    prettyErrors: false,
  });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) throw invalid(`policy ${format === 'json' ? 'JSON' : 'YAML'} is invalid: ${problem.message}`);
  if (doc.contents === null) throw invalid('policy document is empty');
  return toPlain(doc, text, doc.contents, '', 0);
}

function toPlain(doc: Document, text: string, node: Node, path: string, depth: number): unknown {
  const at = path === '' ? '/' : path;
  if (depth > MAX_DEPTH) throw invalid(`${at}: nested deeper than ${MAX_DEPTH} levels`, at);
  if (isAlias(node)) throw invalid(`${at}: YAML aliases are not allowed in a policy`, at);
  if (node.anchor !== undefined) throw invalid(`${at}: YAML anchors are not allowed in a policy`, at);
  if (node.tag !== undefined) throw invalid(`${at}: explicit YAML tags (${node.tag}) are not allowed in a policy`, at);
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    throw invalid(`${at}: scalar value is not a string, finite number, boolean or null`, at);
  }
  if (isSeq(node)) {
    return node.items.map((item, i) => {
      if (!isNodeLike(item)) throw invalid(`${at}: sequence item ${i} is empty`, at);
      return toPlain(doc, text, item, `${path}/${i}`, depth + 1);
    });
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) throw invalid(`${at}: mapping keys must be plain strings or integers`, at);
      const keyNode = pair.key;
      if (keyNode.tag !== undefined || keyNode.anchor !== undefined) throw invalid(`${at}: mapping keys may not carry tags or anchors`, at);
      const k = keyNode.value;
      let key: string;
      if (typeof k === 'string') key = k;
      else if (typeof k === 'number' && Number.isSafeInteger(k) && k >= 0) {
        // One encoding per key: `7`, never `07`, `0x7` or `0o7`.
        const range = keyNode.range;
        const src = range === undefined || range === null ? '' : text.slice(range[0], range[1]);
        if (src !== String(k)) throw invalid(`${at}: key ${JSON.stringify(src)} is not a canonical decimal integer`, at);
        key = String(k);
      } else throw invalid(`${at}: mapping keys must be plain strings or non-negative integers`, at);
      const childPath = `${path}/${pointerSegment(key)}`;
      if (Object.prototype.hasOwnProperty.call(out, key)) throw invalid(`${childPath}: duplicate key`, childPath);
      if (!isNodeLike(pair.value)) throw invalid(`${childPath}: value is empty`, childPath);
      // defineProperty: a "__proto__" key becomes an own property (the schema then rejects it),
      // never the object's prototype.
      Object.defineProperty(out, key, {
        value: toPlain(doc, text, pair.value, childPath, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  throw invalid(`${at}: unsupported YAML node`, at);
}

function isNodeLike(x: unknown): x is Node {
  return isScalar(x) || isMap(x) || isSeq(x) || isAlias(x);
}
