import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_TYPES_COMMAND, CLIENT_TYPES_FILE, clientTypes } from '../server/http/client-types.js';

describe('the client\'s generated wire types', () => {
  it(`${CLIENT_TYPES_FILE} is what the server's schemas generate`, async () => {
    const generated = await clientTypes();
    expect(readFileSync(CLIENT_TYPES_FILE, 'utf8'), `${CLIENT_TYPES_FILE} is out of date: run ${CLIENT_TYPES_COMMAND}`).toBe(generated);
    // Deterministic: a second run gives the same text.
    expect(await clientTypes()).toBe(generated);
  });
});
