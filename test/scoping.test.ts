import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../src/embedder/embedder.js';
import { ValidationError } from '../src/errors.js';
import { escapeTag, scopeFilter } from '../src/query.js';
import { testEmbedder } from './support/embedder.js';
import { openTiers, type TestTiers } from './support/redis.js';

let t: TestTiers;
let embedder: Embedder;
const SECRET = 'Alice keeps her spare house key under the blue flower pot.';

beforeAll(async () => {
  [t, embedder] = await Promise.all([openTiers(), testEmbedder()]);
  await t.longTerm.remember({ text: SECRET, embedding: await embedder.embedOne(SECRET), user: 'alice', namespace: 'default', kind: 'semantic', sourceThread: 'a1a1a1a1a1a1' });
});
afterAll(async () => {
  await t.cleanup();
});

/** Values a hostile or careless caller might send as "bob" to reach alice's memories. */
const HOSTILE_USERS = ['bob', 'alice} | @user:{bob', '*', '-alice', 'alice}', '{alice}', 'al*', 'alice|bob', '@user:{alice}', '(alice)', 'alice bob', 'ali\\ce', '"alice"'];

describe('scoping', () => {
  it.each(HOSTILE_USERS)('recall and list for user %j never return alice\'s memory', async (user) => {
    const query = await embedder.embedOne('Where is the spare key?');
    const recalled = await t.longTerm.recall({ user, namespace: 'default', embedding: query, k: 10, threshold: 2 });
    expect(recalled.map((m) => m.user)).not.toContain('alice');
    expect(recalled).toEqual([]);
    expect(await t.longTerm.list({ user, namespace: 'default' })).toEqual([]);
  });

  it('still finds alice\'s memory for alice (the filter is not simply broken)', async () => {
    const query = await embedder.embedOne('Where is the spare key?');
    const recalled = await t.longTerm.recall({ user: 'alice', namespace: 'default', embedding: query, k: 10, threshold: 2 });
    expect(recalled.map((m) => m.text)).toEqual([SECRET]);
  });

  it('a hostile user name is stored and matched literally, as its own scope', async () => {
    const user = 'alice} | @user:{bob';
    const text = 'A memory of the oddly named user.';
    await t.longTerm.remember({ text, embedding: await embedder.embedOne(text), user, namespace: 'default', kind: 'semantic', sourceThread: 'a1a1a1a1a1a1' });
    expect((await t.longTerm.list({ user, namespace: 'default' })).map((m) => m.text)).toEqual([text]);
    expect((await t.longTerm.list({ user: 'alice', namespace: 'default' })).map((m) => m.text)).toEqual([SECRET]);
    expect(await t.longTerm.clearScope({ user: 'bob', namespace: 'default' })).toBe(0);
  });

  it('refuses an empty user or namespace instead of widening the scope', async () => {
    const embedding = await embedder.embedOne('key');
    for (const scope of [{ user: '', namespace: 'default' }, { user: 'alice', namespace: '' }]) {
      await expect(t.longTerm.recall({ ...scope, embedding, k: 5, threshold: 2 })).rejects.toBeInstanceOf(ValidationError);
      await expect(t.longTerm.list(scope)).rejects.toBeInstanceOf(ValidationError);
      await expect(t.longTerm.clearScope(scope)).rejects.toBeInstanceOf(ValidationError);
    }
    expect(await t.longTerm.list({ user: 'alice', namespace: 'default' })).toHaveLength(1);
  });

  it('refuses values the TAG index would split or trim into another scope', async () => {
    for (const user of ['alice,bob', ' alice', 'alice ', 'a\u0000b']) {
      const err = await t.longTerm.list({ user, namespace: 'default' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('user');
    }
  });
});

describe('escapeTag', () => {
  it('escapes every punctuation and space character the reference demos escape, and more', () => {
    const special = ',.<>{}[]"\':;!@#$%^&*()-+=~| \\/?`';
    for (const ch of special) expect(escapeTag(ch)).toBe('\\' + ch);
    expect(escapeTag('plain_Name42')).toBe('plain_Name42');
    expect(escapeTag('café')).toBe('café');
  });

  it('builds the reference filter shape', () => {
    expect(scopeFilter({ user: 'a b', namespace: 'n-1' }, 'semantic')).toBe('@user:{a\\ b} @namespace:{n\\-1} @kind:{semantic}');
  });
});
