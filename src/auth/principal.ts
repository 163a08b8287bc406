import { ValidationError } from '../errors.js';
import type { Scope } from '../query.js';
import * as v from '../validate.js';

export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 };

/** Bound to every user (or namespace): only admin keys may be bound to users `*`. */
export const ALL = '*';

/** Who a request acts for: an API key, or everyone when authentication is off. */
export interface Principal {
  auth: 'off' | 'keys';
  keyId: string | null;
  name: string | null;
  role: Role;
  users: readonly string[];
  namespaces: readonly string[];
  expiresTs: number | null;
}

export const OPEN_PRINCIPAL: Principal = Object.freeze({
  auth: 'off', keyId: null, name: null, role: 'admin', users: Object.freeze([ALL]), namespaces: Object.freeze([ALL]), expiresTs: null,
});

/** A request refused for what its credential may do: 403 naming the field. */
export class Forbidden extends Error {
  override readonly name = 'Forbidden';
  readonly status = 403;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * Users and namespaces are TAG values, and the index matches TAGs case-insensitively (`Alice` and
 * `alice` are one scope there): scope checks compare the same way. Only ASCII letters are folded,
 * as Lua's string.lower folds them in the scripts that check a thread's owner: a non-ASCII case
 * variant is refused rather than let through by one check and not the other.
 */
export function foldName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function bound(list: readonly string[], name: string): boolean {
  if (list.includes(ALL)) return true;
  const folded = foldName(name);
  return list.some((entry) => foldName(entry) === folded);
}

export const allUsers = (p: Principal): boolean => p.users.includes(ALL);
export const mayActAs = (p: Principal, user: string): boolean => bound(p.users, user);
export const inScope = (p: Principal, scope: Scope): boolean => bound(p.users, scope.user) && bound(p.namespaces, scope.namespace);

export function requireRole(p: Principal, role: Role): void {
  if (RANK[p.role] < RANK[role]) throw new Forbidden('role', `this key is ${p.role}; ${role} is needed`);
}

/** The one concrete entry of a list (the default a key bound to one user or namespace gives), else `fallback`. */
function soleOr(list: readonly string[], fallback: string): string {
  return list.length === 1 && list[0] !== ALL ? (list[0] as string) : fallback;
}

/**
 * The scope a request acts in: what it names, checked against the key, or, where it names
 * nothing, the key's own user and namespace when it is bound to one of each (else `default`, as
 * without authentication). Naming a user or namespace outside the key is 403.
 */
export function resolveScope(p: Principal, requested: { user?: unknown; namespace?: unknown }): Scope {
  const user = resolveUser(p, requested.user);
  const namespace = v.scopeValue(requested.namespace ?? soleOr(p.namespaces, 'default'), 'namespace');
  if (!bound(p.namespaces, namespace)) throw new Forbidden('namespace', 'outside the scope of this API key');
  return { user, namespace };
}

/** The user a request acts as where only the user matters (a thread's owner). */
function resolveUser(p: Principal, requested: unknown): string {
  const user = v.scopeValue(requested ?? soleOr(p.users, 'default'), 'user');
  if (!bound(p.users, user)) throw new Forbidden('user', 'outside the scope of this API key');
  return user;
}

/** Checks a list of users or namespaces a key is bound to: scope values, or `*` alone. */
export function boundList(value: unknown, field: 'users' | 'namespaces'): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new ValidationError(field, 'must be a non-empty list');
  if (value.length > 100) throw new ValidationError(field, 'at most 100 entries');
  const list = value.map((entry: unknown) => {
    if (entry === ALL) return ALL;
    const name = v.scopeValue(entry, field === 'users' ? 'user' : 'namespace');
    // A literal `*` inside a name is harmless to the index (escaped), but would read as a wildcard to people.
    if (name.includes(ALL)) throw new ValidationError(field, `${JSON.stringify(name)}: * stands alone (every ${field === 'users' ? 'user' : 'namespace'})`);
    return name;
  });
  if (list.includes(ALL) && list.length > 1) throw new ValidationError(field, '* stands alone (every one); give it without others');
  const folded = new Set(list.map(foldName));
  if (folded.size !== list.length) throw new ValidationError(field, 'names are compared case-insensitively; give each once');
  return list;
}
