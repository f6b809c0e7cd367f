//! Step 4: decide by the local allowlist whether a verified caller may
//! cancel a given request.
//!
//! A rule matches when every field it sets matches (fields are ANDed,
//! entries within a field ORed). A matching `deny` rule wins over any
//! `allow`; with no matching `allow`, the answer is deny. Ids (tenants,
//! users, groups, apps, directory roles, requests) are GUIDs or sign-in
//! names and are compared without regard to case; app role values are
//! compared exactly, as Entra issues them.

use crate::auth::Claims;
use crate::config::raw::RawRule;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Whether denials are enforced or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    DryRun,
}

/// The outcome of evaluating the allowlist for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// `allowed_by_rule`, `denied_by_rule` or `no_matching_rule`.
    pub reason: &'static str,
    /// The name of the deciding rule, if one decided.
    pub rule: Option<String>,
}

/// A compiled allowlist.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    mode: Mode,
}

#[derive(Debug)]
struct Rule {
    name: String,
    effect: Effect,
    tenants: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    apps: Vec<String>,
    roles: Vec<String>,
    directory_roles: Vec<String>,
    requests: Vec<String>,
}

impl Effect {
    /// The audit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl Mode {
    /// The audit and config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        }
    }
}

impl Policy {
    /// Compiles `[[policy.rules]]`, naming the first bad rule on error.
    pub fn compile(raw: &[RawRule]) -> Result<Self, (&'static str, String)> {
        let mut rules = Vec::with_capacity(raw.len());
        for (index, r) in raw.iter().enumerate() {
            let at = |msg: &str| {
                ("policy.rules", format!("rule {}: {msg}", index + 1))
            };
            if r.name.trim().is_empty() {
                return Err(at("needs a name"));
            }
            if rules.iter().any(|known: &Rule| known.name == r.name) {
                return Err(at(&format!("name '{}' is used twice", r.name)));
            }
            let effect = match r.effect.as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                other => {
                    return Err(at(&format!(
                        "effect '{other}' is not allow or deny"
                    )));
                }
            };
            let fields = [
                &r.tenants,
                &r.users,
                &r.groups,
                &r.apps,
                &r.roles,
                &r.directory_roles,
                &r.requests,
            ];
            // An allow rule with no condition would allow everyone; make
            // that impossible to write by accident.
            if effect == Effect::Allow && fields.iter().all(|f| f.is_empty()) {
                return Err(at(&format!(
                    "allow rule '{}' sets no field and would allow every caller",
                    r.name
                )));
            }
            if fields.iter().any(|f| f.iter().any(|e| e.trim().is_empty())) {
                return Err(at(&format!(
                    "rule '{}' has an empty entry",
                    r.name
                )));
            }
            rules.push(Rule {
                name: r.name.clone(),
                effect,
                tenants: lowercase(&r.tenants),
                users: lowercase(&r.users),
                groups: lowercase(&r.groups),
                apps: lowercase(&r.apps),
                roles: r.roles.clone(),
                directory_roles: lowercase(&r.directory_roles),
                requests: lowercase(&r.requests),
            });
        }
        Ok(Self {
            rules,
            mode: Mode::Enforce,
        })
    }

    /// Sets enforce or dry-run.
    pub fn with_mode(self, mode: Mode) -> Self {
        Self { mode, ..self }
    }

    /// Enforce or dry-run.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when at least one rule can allow.
    pub fn has_allow_rule(&self) -> bool {
        self.rules.iter().any(|r| r.effect == Effect::Allow)
    }

    /// Decides for a verified caller and a request id.
    pub fn decide(&self, claims: &Claims, request_id: &str) -> Decision {
        let mut allow = None;
        for rule in self.rules.iter().filter(|r| r.matches(claims, request_id))
        {
            match rule.effect {
                Effect::Deny => {
                    return Decision {
                        effect: Effect::Deny,
                        reason: "denied_by_rule",
                        rule: Some(rule.name.clone()),
                    };
                }
                Effect::Allow => {
                    allow.get_or_insert(rule);
                }
            }
        }
        match allow {
            Some(rule) => Decision {
                effect: Effect::Allow,
                reason: "allowed_by_rule",
                rule: Some(rule.name.clone()),
            },
            None => Decision {
                effect: Effect::Deny,
                reason: "no_matching_rule",
                rule: None,
            },
        }
    }
}

impl Rule {
    fn matches(&self, claims: &Claims, request_id: &str) -> bool {
        let users = [
            claims.oid.as_deref(),
            claims.upn.as_deref(),
            claims.preferred_username.as_deref(),
        ];
        let apps = [claims.appid.as_deref(), claims.azp.as_deref()];

        field(&self.tenants, [claims.tid.as_deref()].into_iter().flatten())
            && field(&self.users, users.into_iter().flatten())
            && field(&self.groups, claims.groups.iter().map(String::as_str))
            && field(&self.apps, apps.into_iter().flatten())
            && (self.roles.is_empty()
                || claims.roles.iter().any(|r| self.roles.contains(r)))
            && field(
                &self.directory_roles,
                claims.wids.iter().map(String::as_str),
            )
            && (self.requests.is_empty()
                || self.requests.iter().any(|p| wildcard(p, request_id)))
    }
}

/// An empty field matches anything; otherwise some claim value must equal
/// some entry, without regard to case (entries are stored lowercased).
fn field<'a>(
    entries: &[String],
    mut values: impl Iterator<Item = &'a str>,
) -> bool {
    entries.is_empty()
        || values.any(|v| entries.iter().any(|e| e.eq_ignore_ascii_case(v)))
}

fn lowercase(values: &[String]) -> Vec<String> {
    values.iter().map(|v| v.to_ascii_lowercase()).collect()
}

/// Matches `pattern` (lowercase, `*` for any run of characters) against
/// `value` without regard to case.
fn wildcard(pattern: &str, value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole value must equal the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
