//! The operator roster: who may sign in, with which role, and their PINs.
//!
//! Authority comes from the roster, never from what a client claims. A name the roster does
//! not know may sign in only as an operator (and is added as one); the supervisor and trainer
//! roles are assigned by a supervisor (or, for the first supervisor, from the command line:
//! `cityops roster add`), and always need a PIN. PINs are kept as argon2id hashes in their PHC
//! form; checking one is constant-time (the argon2 crate compares the outputs so). Five wrong
//! PINs in a row lock the name for five minutes; the refusals and the lock are audited.
//!
//! Databases from before the roster may hold PINs as iterated SHA-256 (`pin_salt` set); such a
//! PIN still signs in and is rehashed with argon2id when it does.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use cityops_core::model::Millis;
use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::{AuditRecord, AuditTx, Store, StoreError};

/// Wrong PINs in a row that lock a name.
pub const MAX_WRONG_PINS: u32 = 5;
/// How long a name stays locked after too many wrong PINs.
pub const LOCKOUT_MS: Millis = 5 * 60 * 1000;
/// Rounds of the legacy PIN hash (iterated SHA-256), for databases written before argon2id.
const LEGACY_PIN_ROUNDS: u32 = 20_000;

/// The roles that act with authority and therefore need a PIN.
pub fn role_needs_pin(role: &str) -> bool {
    matches!(role, "supervisor" | "trainer")
}

/// The outcome of a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in with this role.
    Accepted,
    /// The PIN was wrong; `left` more tries before the name is locked.
    WrongPin { left: u32 },
    /// Too many wrong PINs: no sign-in under this name until `until_ms`.
    Locked { until_ms: Millis },
    /// The roster does not give this name the role asked for (`has`: what it does give).
    RoleRefused { has: Option<String> },
    /// The role needs a PIN and none was given, or the roster entry has none.
    PinRequired,
}

/// One operator of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub name: String,
    pub role: String,
    pub has_pin: bool,
    pub locked_until_ms: Option<Millis>,
}

struct Row {
    role: String,
    salt: Option<String>,
    hash: Option<String>,
    failed: u32,
    locked_until: Option<Millis>,
}

/// An argon2id hash of a PIN, in PHC form.
pub fn hash_pin(pin: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| StoreError::Refused(format!("PIN salt: {e}")))?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Refused(format!("PIN hash: {e}")))
}

fn legacy_pin_hash(salt: &str, pin: &str) -> String {
    let mut h: [u8; 32] = Sha256::digest(format!("{salt}:{pin}").as_bytes()).into();
    for _ in 1..LEGACY_PIN_ROUNDS {
        let mut d = Sha256::new();
        d.update(salt.as_bytes());
        d.update(h);
        h = d.finalize().into();
    }
    hex::encode(h)
}

/// Compares without stopping at the first difference, so the time taken says nothing of how
/// much of a guess was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `pin` matches an argon2id hash in PHC form (a site's roster holds only those).
pub fn pin_matches_hash(hash: &str, pin: &str) -> bool {
    pin_matches(None, hash, pin)
}

/// True when `pin` matches the stored hash (argon2id, or a legacy salted SHA-256).
fn pin_matches(salt: Option<&str>, hash: &str, pin: &str) -> bool {
    match (salt, PasswordHash::new(hash)) {
        (None, Ok(parsed)) => Argon2::default().verify_password(pin.as_bytes(), &parsed).is_ok(),
        (Some(salt), _) => same_bytes(legacy_pin_hash(salt, pin).as_bytes(), hash.as_bytes()),
        (None, Err(_)) => false,
    }
}

fn read(tx: &Transaction<'_>, name: &str) -> Result<Option<Row>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT role, pin_salt, pin_hash, failed_pins, locked_until_ms FROM operators WHERE name = ?1",
            [name],
            |r| {
                Ok(Row {
                    role: r.get(0)?,
                    salt: r.get(1)?,
                    hash: r.get(2)?,
                    failed: r.get(3)?,
                    locked_until: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Audits a roster event about operator `subject`. The entry vouches for `subject`'s row as the
/// transaction leaves it (or for its absence), so an edited role or PIN hash is found by
/// `cityops audit verify`.
fn audit(
    tx: &AuditTx<'_>,
    wall_ms: Millis,
    operator: &str,
    role: &str,
    action: &str,
    subject: &str,
    detail: String,
) -> Result<(), StoreError> {
    let record = AuditRecord {
        run: None,
        wall_ms,
        scenario_ms: None,
        operator,
        role,
        action,
        subject,
        detail,
    };
    Store::append_audit_for_operator(tx, &record, subject)?;
    Ok(())
}

impl Store {
    /// Signs `name` in as `role` if the roster allows it: the roster's own role, or plain
    /// operator; an unknown name only as an operator (it is added as one, with `pin` if
    /// given). A name with a PIN must give it. Every outcome is audited; a refusal changes
    /// nothing but the wrong-PIN count.
    pub fn sign_in(&self, name: &str, role: &str, pin: Option<&str>, wall_ms: Millis) -> Result<SignIn, StoreError> {
        let pin = pin.filter(|p| !p.is_empty());
        // A new name's PIN is hashed before the write lock is taken, since argon2id takes a
        // while; a known name's is only verified, below. (A name added between this read and
        // the lock is then treated as known, and the hash goes unused.)
        let known: bool =
            self.conn
                .query_row("SELECT EXISTS (SELECT 1 FROM operators WHERE name = ?1)", [name], |r| {
                    r.get(0)
                })?;
        let new_hash = if known || role != "operator" {
            None
        } else {
            pin.map(hash_pin).transpose()?
        };
        self.durably(|tx| {
            let Some(row) = read(tx, name)? else {
                if role != "operator" {
                    audit(
                        tx,
                        wall_ms,
                        name,
                        role,
                        "sign_in_refused",
                        name,
                        format!("not in the roster as {role}"),
                    )?;
                    return Ok(SignIn::RoleRefused { has: None });
                }
                let hash = match (&new_hash, pin) {
                    (None, Some(pin)) => Some(hash_pin(pin)?),
                    _ => new_hash.clone(),
                };
                tx.execute(
                    "INSERT INTO operators (name, role, pin_hash, created_wall_ms) VALUES (?1, 'operator', ?2, ?3)",
                    params![name, hash, wall_ms],
                )?;
                audit(
                    tx,
                    wall_ms,
                    name,
                    role,
                    "sign_in",
                    name,
                    "added to the roster as operator".into(),
                )?;
                return Ok(SignIn::Accepted);
            };
            if row.locked_until.is_some_and(|t| t > wall_ms) {
                return Ok(SignIn::Locked {
                    until_ms: row.locked_until.unwrap_or(wall_ms),
                });
            }
            if role != row.role && role != "operator" {
                audit(
                    tx,
                    wall_ms,
                    name,
                    role,
                    "sign_in_refused",
                    name,
                    format!("the roster has {name} as {}", row.role),
                )?;
                return Ok(SignIn::RoleRefused { has: Some(row.role) });
            }
            match (&row.hash, pin) {
                (None, _) if role_needs_pin(role) => return Ok(SignIn::PinRequired),
                (None, _) => {}
                (Some(_), None) => return Ok(SignIn::PinRequired),
                (Some(hash), Some(pin)) => {
                    if !pin_matches(row.salt.as_deref(), hash, pin) {
                        let failed = row.failed + 1;
                        if failed >= MAX_WRONG_PINS {
                            let until = wall_ms + LOCKOUT_MS;
                            tx.execute(
                                "UPDATE operators SET failed_pins = 0, locked_until_ms = ?2 WHERE name = ?1",
                                params![name, until],
                            )?;
                            audit(
                                tx,
                                wall_ms,
                                name,
                                role,
                                "pin_lockout",
                                name,
                                format!(
                                    "{failed} wrong PINs in a row; locked for {} minutes",
                                    LOCKOUT_MS / 60_000
                                ),
                            )?;
                            return Ok(SignIn::Locked { until_ms: until });
                        }
                        tx.execute(
                            "UPDATE operators SET failed_pins = ?2 WHERE name = ?1",
                            params![name, failed],
                        )?;
                        audit(
                            tx,
                            wall_ms,
                            name,
                            role,
                            "sign_in_refused",
                            name,
                            format!("wrong PIN ({failed} of {MAX_WRONG_PINS})"),
                        )?;
                        return Ok(SignIn::WrongPin {
                            left: MAX_WRONG_PINS - failed,
                        });
                    }
                    if row.salt.is_some() {
                        // A legacy hash is replaced by argon2id now that the PIN is known.
                        tx.execute(
                            "UPDATE operators SET pin_salt = NULL, pin_hash = ?2 WHERE name = ?1",
                            params![name, hash_pin(pin)?],
                        )?;
                    }
                }
            }
            tx.execute(
                "UPDATE operators SET failed_pins = 0, locked_until_ms = NULL WHERE name = ?1",
                [name],
            )?;
            audit(tx, wall_ms, name, role, "sign_in", name, String::new())?;
            Ok(SignIn::Accepted)
        })
    }

    /// Adds `name` to the roster or changes their role or PIN, on the authority of `by` (a
    /// signed-in supervisor, or `cityops roster add`). The supervisor and trainer roles need a
    /// PIN: given now, or already held. Audited.
    pub fn roster_set(
        &self,
        name: &str,
        role: &str,
        pin: Option<&str>,
        by: &str,
        by_role: &str,
        wall_ms: Millis,
    ) -> Result<(), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(StoreError::Refused(
                "an operator name is 1 to 64 printable characters".into(),
            ));
        }
        if !matches!(role, "operator" | "supervisor" | "trainer") {
            return Err(StoreError::Refused(format!(
                "{role:?} is not a role (operator, supervisor or trainer)"
            )));
        }
        let pin = pin.filter(|p| !p.is_empty());
        if let Some(p) = pin {
            if p.chars().count() < 4 || p.chars().count() > 64 {
                return Err(StoreError::Refused("a PIN is 4 to 64 characters".into()));
            }
        }
        let hash = pin.map(hash_pin).transpose()?;
        self.durably(|tx| {
            let had_pin = read(tx, name)?.is_some_and(|r| r.hash.is_some());
            if role_needs_pin(role) && hash.is_none() && !had_pin {
                return Err(StoreError::Refused(format!("the {role} role needs a PIN")));
            }
            tx.execute(
                "INSERT INTO operators (name, role, pin_hash, created_wall_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(name) DO UPDATE SET role = excluded.role, \
                 pin_salt = CASE WHEN excluded.pin_hash IS NULL THEN pin_salt ELSE NULL END, \
                 pin_hash = COALESCE(excluded.pin_hash, pin_hash), failed_pins = 0, locked_until_ms = NULL",
                params![name, role, hash, wall_ms],
            )?;
            let detail = format!("{role}{}", if hash.is_some() { ", PIN set" } else { "" });
            audit(tx, wall_ms, by, by_role, "roster", name, detail)
        })
    }

    /// The roster, by name.
    pub fn roster(&self) -> Result<Vec<RosterEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, pin_hash IS NOT NULL, locked_until_ms FROM operators ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(RosterEntry {
                name: r.get(0)?,
                role: r.get(1)?,
                has_pin: r.get(2)?,
                locked_until_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn an_unknown_name_is_an_operator_and_cannot_claim_authority() {
        let (_d, s) = store();
        assert_eq!(
            s.sign_in("mallory", "supervisor", None, 1).unwrap(),
            SignIn::RoleRefused { has: None }
        );
        assert_eq!(
            s.sign_in("mallory", "trainer", Some("1234"), 1).unwrap(),
            SignIn::RoleRefused { has: None }
        );
        assert_eq!(s.sign_in("mallory", "operator", None, 1).unwrap(), SignIn::Accepted);
        // Signing in again does not overwrite the roster's role.
        assert_eq!(
            s.sign_in("mallory", "supervisor", None, 2).unwrap(),
            SignIn::RoleRefused {
                has: Some("operator".into())
            }
        );
        assert_eq!(s.roster().unwrap()[0].role, "operator");
    }

    #[test]
    fn supervisors_need_their_pin_and_five_wrong_ones_lock_the_name() {
        let (_d, s) = store();
        assert!(
            s.roster_set("anna", "supervisor", None, "cli", "system", 0).is_err(),
            "a supervisor needs a PIN"
        );
        s.roster_set("anna", "supervisor", Some("2468"), "cli", "system", 0)
            .unwrap();
        let stored: String = s
            .conn
            .query_row("SELECT pin_hash FROM operators WHERE name = 'anna'", [], |r| r.get(0))
            .unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("2468"), "{stored}");
        assert_eq!(s.sign_in("anna", "supervisor", None, 1).unwrap(), SignIn::PinRequired);
        assert_eq!(
            s.sign_in("anna", "supervisor", Some("2468"), 1).unwrap(),
            SignIn::Accepted
        );
        assert_eq!(
            s.sign_in("anna", "operator", Some("2468"), 1).unwrap(),
            SignIn::Accepted,
            "a supervisor may work as an operator"
        );
        for left in (1..MAX_WRONG_PINS).rev() {
            assert_eq!(
                s.sign_in("anna", "supervisor", Some("0000"), 10).unwrap(),
                SignIn::WrongPin { left }
            );
        }
        let locked = SignIn::Locked {
            until_ms: 10 + LOCKOUT_MS,
        };
        assert_eq!(s.sign_in("anna", "supervisor", Some("0000"), 10).unwrap(), locked);
        assert_eq!(
            s.sign_in("anna", "supervisor", Some("2468"), 11).unwrap(),
            locked,
            "even the right PIN waits out the lock"
        );
        assert_eq!(
            s.sign_in("anna", "supervisor", Some("2468"), 10 + LOCKOUT_MS).unwrap(),
            SignIn::Accepted
        );
        let actions: Vec<String> = s.audit_trail().unwrap().into_iter().map(|e| e.action).collect();
        assert!(actions.iter().any(|a| a == "pin_lockout"), "{actions:?}");
        assert_eq!(actions.iter().filter(|a| *a == "sign_in_refused").count(), 4);
    }

    #[test]
    fn a_legacy_pin_still_signs_in_and_is_rehashed() {
        let (_d, s) = store();
        let salt = "00112233";
        s.conn
            .execute(
                "INSERT INTO operators (name, role, pin_salt, pin_hash, created_wall_ms) VALUES ('old', 'supervisor', ?1, ?2, 0)",
                params![salt, legacy_pin_hash(salt, "1357")],
            )
            .unwrap();
        assert_eq!(
            s.sign_in("old", "supervisor", Some("9999"), 1).unwrap(),
            SignIn::WrongPin {
                left: MAX_WRONG_PINS - 1
            }
        );
        assert_eq!(
            s.sign_in("old", "supervisor", Some("1357"), 1).unwrap(),
            SignIn::Accepted
        );
        let (salt, hash): (Option<String>, String) = s
            .conn
            .query_row("SELECT pin_salt, pin_hash FROM operators WHERE name = 'old'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(salt.is_none() && hash.starts_with("$argon2id$"));
        assert_eq!(
            s.sign_in("old", "supervisor", Some("1357"), 2).unwrap(),
            SignIn::Accepted
        );
    }
}
