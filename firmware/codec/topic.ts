import { CodecError } from "./constants";

/**
 * Topic names and filters (§4.7). Shape rules are on the characters `/`, `+`, `#` and `$`,
 * which are ASCII in every encoding, so these work on the runtime's own strings. UTF-8 form and
 * U+0000 are checked on the encoded bytes (encode.ts).
 */

const SLASH = 47;
const PLUS = 43;
const HASH = 35;
const DOLLAR = 36;

/** A topic name for PUBLISH: not empty, no wildcards (§4.7.3, MQTT-3.3.2-2). 0 or a CodecError. */
export function checkTopicShape(topic: string): number {
  const n = topic.length;
  if (n === 0) return CodecError.EmptyTopic;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return CodecError.WildcardInTopic;
  }
  return 0;
}

/**
 * A topic filter for SUBSCRIBE/UNSUBSCRIBE (§4.7.1): not empty; `+` fills a whole level; `#`
 * fills the last level. 0 or a CodecError.
 */
export function checkFilterShape(filter: string): number {
  const n = filter.length;
  if (n === 0) return CodecError.EmptyTopic;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) {
      const levelStart = i === 0 || filter.charCodeAt(i - 1) === SLASH;
      const levelEnd = i === n - 1 || filter.charCodeAt(i + 1) === SLASH;
      if (!levelStart || !levelEnd) return CodecError.InvalidFilter;
      // MQTT-4.7.1-2: # is the last character of the filter.
      if (c === HASH && i !== n - 1) return CodecError.InvalidFilter;
    }
  }
  return 0;
}

/**
 * Whether a topic name matches a (valid) filter (§4.7): `+` matches one level, possibly empty;
 * `#` matches the parent level and everything below; a leading wildcard never matches a topic
 * starting with `$` (MQTT-4.7.2-1). Allocates nothing.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fn = filter.length;
  const tn = topic.length;
  if (tn > 0 && topic.charCodeAt(0) === DOLLAR && fn > 0) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  let f = 0;
  let t = 0;
  while (f < fn) {
    const c = filter.charCodeAt(f);
    if (c === HASH) return true;
    if (c === PLUS) {
      while (t < tn && topic.charCodeAt(t) !== SLASH) t = t + 1;
      f = f + 1;
      continue;
    }
    if (t >= tn) {
      // "a/#" also matches "a": the rest of the filter is exactly "/#".
      return f + 2 === fn && c === SLASH && filter.charCodeAt(f + 1) === HASH;
    }
    if (c !== topic.charCodeAt(t)) return false;
    f = f + 1;
    t = t + 1;
  }
  return t === tn;
}
