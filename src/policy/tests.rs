use super::*;

const ADMIN_ROLE: &str = "af78dc32-cf4d-46f9-ba4e-4428526346b5";
const TENANT: &str = "72f988bf-0000-0000-0000-000000000000";

fn rule(name: &str, effect: &str) -> RawRule {
    RawRule {
        name: name.into(),
        effect: effect.into(),
        ..RawRule::default()
    }
}

fn policy() -> Policy {
    let rules = vec![
        RawRule {
            directory_roles: vec![ADMIN_ROLE.to_uppercase()],
            tenants: vec![TENANT.into()],
            ..rule("admins", "allow")
        },
        RawRule {
            apps: vec!["app-1".into()],
            requests: vec!["ops-*".into()],
            ..rule("ops-app", "allow")
        },
        RawRule {
            roles: vec!["Cancel.All".into()],
            ..rule("role-holders", "allow")
        },
        RawRule {
            users: vec!["BreakGlass@Contoso.com".into()],
            ..rule("break-glass", "deny")
        },
        RawRule {
            requests: vec!["*-frozen".into()],
            ..rule("frozen", "deny")
        },
    ];
    Policy::compile(&rules).expect("valid rules")
}

fn claims(f: impl FnOnce(&mut Claims)) -> Claims {
    let mut c = Claims {
        tid: Some(TENANT.into()),
        oid: Some("oid-1".into()),
        upn: Some("user@contoso.com".into()),
        ..Claims::default()
    };
    f(&mut c);
    c
}

/// Name, caller, request id, and the expected effect, reason and rule.
type Case = (
    &'static str,
    Claims,
    &'static str,
    Effect,
    &'static str,
    Option<&'static str>,
);

#[test]
fn allowlist_table() {
    let cases: Vec<Case> = vec![
        (
            "admin role in the right tenant",
            claims(|c| c.wids = vec![ADMIN_ROLE.into()]),
            "r1",
            Effect::Allow,
            "allowed_by_rule",
            Some("admins"),
        ),
        (
            "admin role in another tenant: fields are ANDed",
            claims(|c| {
                c.wids = vec![ADMIN_ROLE.into()];
                c.tid = Some("other".into());
            }),
            "r1",
            Effect::Deny,
            "no_matching_rule",
            None,
        ),
        (
            "no claims that any rule names",
            claims(|_| {}),
            "r1",
            Effect::Deny,
            "no_matching_rule",
            None,
        ),
        (
            "app on a request its pattern covers",
            claims(|c| c.azp = Some("APP-1".into())),
            "ops-42",
            Effect::Allow,
            "allowed_by_rule",
            Some("ops-app"),
        ),
        (
            "app on a request outside its pattern",
            claims(|c| c.appid = Some("app-1".into())),
            "dev-42",
            Effect::Deny,
            "no_matching_rule",
            None,
        ),
        (
            "app role values compare exactly",
            claims(|c| c.roles = vec!["cancel.all".into()]),
            "r1",
            Effect::Deny,
            "no_matching_rule",
            None,
        ),
        (
            "app role holder",
            claims(|c| c.roles = vec!["Cancel.All".into()]),
            "r1",
            Effect::Allow,
            "allowed_by_rule",
            Some("role-holders"),
        ),
        (
            "deny by upn beats an allow, case-insensitively",
            claims(|c| {
                c.wids = vec![ADMIN_ROLE.into()];
                c.upn = Some("breakglass@contoso.com".into());
            }),
            "r1",
            Effect::Deny,
            "denied_by_rule",
            Some("break-glass"),
        ),
        (
            "deny by preferred_username when upn is absent",
            claims(|c| {
                c.wids = vec![ADMIN_ROLE.into()];
                c.upn = None;
                c.preferred_username = Some("BREAKGLASS@contoso.com".into());
            }),
            "r1",
            Effect::Deny,
            "denied_by_rule",
            Some("break-glass"),
        ),
        (
            "deny by request pattern beats an allow",
            claims(|c| c.wids = vec![ADMIN_ROLE.into()]),
            "r1-FROZEN",
            Effect::Deny,
            "denied_by_rule",
            Some("frozen"),
        ),
    ];
    let policy = policy();
    for (name, claims, request, effect, reason, rule) in cases {
        let decision = policy.decide(&claims, request);
        assert_eq!(decision.effect, effect, "{name}");
        assert_eq!(decision.reason, reason, "{name}");
        assert_eq!(decision.rule.as_deref(), rule, "{name}");
    }
}

#[test]
fn no_rules_means_deny() {
    let policy = Policy::compile(&[]).expect("empty is valid");
    let decision = policy.decide(&claims(|_| {}), "r1");
    assert_eq!(decision.effect, Effect::Deny);
    assert_eq!(decision.reason, "no_matching_rule");
}

#[test]
fn rules_that_would_surprise_are_refused() {
    let unconditional = [rule("everyone", "allow")];
    assert!(Policy::compile(&unconditional).is_err());
    let bad_effect = [RawRule {
        users: vec!["u".into()],
        ..rule("x", "permit")
    }];
    assert!(Policy::compile(&bad_effect).is_err());
    let twice = [
        RawRule {
            users: vec!["u".into()],
            ..rule("same", "allow")
        },
        RawRule {
            users: vec!["v".into()],
            ..rule("same", "deny")
        },
    ];
    assert!(Policy::compile(&twice).is_err());
    let empty_entry = [RawRule {
        users: vec!["".into()],
        ..rule("blank", "deny")
    }];
    assert!(Policy::compile(&empty_entry).is_err());
}

#[test]
fn wildcards_match_runs_of_characters() {
    assert!(wildcard("abc", "ABC"));
    assert!(!wildcard("abc", "abcd"));
    assert!(wildcard("a*", "a"));
    assert!(wildcard("*", "anything"));
    assert!(wildcard("a*c", "abbbc"));
    assert!(!wildcard("a*c", "abbb"));
    assert!(wildcard("*-x-*", "1-x-2"));
    assert!(!wildcard("ab*ba", "aba"));
}
