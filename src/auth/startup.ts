import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { ValidationError } from '../errors.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import { ApiKeyStore } from './key-store.js';
import { checkAuthMode, warnWhileInsecure } from './mode.js';

/**
 * Authentication at the start of an API process: refuses an unauthenticated listener other
 * machines can reach, installs AGENTMEM_BOOTSTRAP_ADMIN_KEY, says when keys are on and none
 * exist, and starts the recurring warning of `off-insecure`. Returns what stops that warning.
 */
export async function prepareAuth(redis: Redis, keys: Keys, config: Config, log: Logger): Promise<() => void> {
  checkAuthMode(config);
  const store = new ApiKeyStore(redis, keys);
  if (config.bootstrapAdminKey !== undefined) {
    const { keyId, outcome } = await store.installBootstrap(config.bootstrapAdminKey);
    if (outcome === 'conflict') {
      throw new ValidationError('AGENTMEM_BOOTSTRAP_ADMIN_KEY', `key id ${keyId} already exists with another secret; give another key, or revoke nothing and unset it`);
    }
    if (outcome === 'revoked') log.warn('auth.bootstrap_key_revoked', { key_id: keyId, message: 'AGENTMEM_BOOTSTRAP_ADMIN_KEY names a revoked key: it stays revoked; unset it or give a new one' });
    else log.info('auth.bootstrap_key', { key_id: keyId, installed: outcome === 'installed' });
  }
  if (config.auth === 'keys') {
    const active = (await store.list()).filter((k) => !k.revoked && (k.expires_ts === null || k.expires_ts > Date.now() / 1000));
    if (active.length === 0) log.warn('auth.no_keys', { message: 'AGENTMEM_AUTH=keys and no valid API key exists: every request will be refused; create one with `agentmem keys create --user <user>`' });
    log.info('auth.keys', { active_keys: active.length, metrics_public: config.metricsPublic });
  }
  return warnWhileInsecure(config, log);
}
