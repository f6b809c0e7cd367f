use super::*;

const ID: &str = "0b2a8c5e-1f3d-4e6a-9b7c-2d4e6f8a0b1c";

fn route(target: &str) -> Result<Route, RouteError> {
    let uri: Uri = target.parse().expect("test targets parse as URIs");
    classify(&Method::POST, &uri, http::Version::HTTP_11)
}

fn cancel_all(version: Version) -> Result<Route, RouteError> {
    Ok(Route::CancelAll(CancelAll {
        version,
        request_id: ID.into(),
    }))
}

#[test]
fn spellings_of_cancel_all_are_recognized() {
    let spellings = [
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
        "/beta/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
        "/BETA/IDENTITYGOVERNANCE/permissionsmanagement/ScheduledPermissionsRequests/{id}/CANCELALL",
        "/beta//identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll/",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/microsoft.graph.cancelAll",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/Microsoft.Graph.CancelAll",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests({id})/cancelAll",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests('{id}')/cancelAll",
        "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/%27{id}%27/cancelAll",
        "/beta/identity%47overnance/permissionsManagement/scheduledPermissionsRequests/{id}/cancel%41ll",
    ];
    for spelling in spellings {
        let target = spelling.replace("{id}", ID);
        assert_eq!(route(&target), cancel_all(Version::Beta), "{target}");
    }
    let v1 = format!(
        "/v1.0/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
    );
    assert_eq!(route(&v1), cancel_all(Version::V1));
}

#[test]
fn canonical_path_is_built_from_parts() {
    let target = format!(
        "/BETA//permissionsmanagement/scheduledpermissionsrequests('{ID}')/microsoft.graph.cancelall/"
    );
    let Ok(Route::CancelAll(call)) = route(&target) else {
        panic!("not classified as cancelAll");
    };
    assert_eq!(
        call.canonical_path(),
        format!(
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
        )
    );
}

#[test]
fn ambiguous_targets_are_refused() {
    let base = "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests";
    let cases = [
        (
            format!("{base}%2F{ID}/cancelAll"),
            RouteError::EncodedDelimiter,
        ),
        (
            format!("{base}/{ID}%5CcancelAll"),
            RouteError::EncodedDelimiter,
        ),
        (
            format!("{base}/{ID}/cancel%2541ll"),
            RouteError::EncodedDelimiter,
        ),
        (
            format!("{base}/{ID}/cancelAll%00"),
            RouteError::ForbiddenCharacter,
        ),
        (
            format!("{base}/{ID};x=1/cancelAll"),
            RouteError::ForbiddenCharacter,
        ),
        (format!("{base}/{ID}/./cancelAll"), RouteError::DotSegment),
        (
            format!("{base}/x/../{ID}/cancelAll"),
            RouteError::DotSegment,
        ),
        (format!("{base}/{ID}/cancelAll%zz"), RouteError::BadEscape),
        (format!("{base}/{ID}/cancelAll%4"), RouteError::BadEscape),
        (format!("{base}/%ff{ID}/cancelAll"), RouteError::NonAscii),
        (
            format!(
                "/beta/identityGovernance/permissionsManagement/scheduledPerm%C4%B1ssionsRequests/{ID}/cancelAll"
            ),
            RouteError::NonAscii,
        ),
        (
            format!("{base}/{ID}/cancelAll%23x"),
            RouteError::ForbiddenCharacter,
        ),
        (
            format!("{base}/{{{ID}}}/cancelAll"),
            RouteError::ForbiddenCharacter,
        ),
        (
            format!("{base}/{ID}/cancelAll()"),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!("{base}/{ID}/graph.cancelAll"),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!(
                "{base}/{ID}/microsoft.graph.scheduledPermissionsRequest/cancelAll"
            ),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!("{base}/{ID}/cancelAll/$value"),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!("{base}/{ID}/cancel%20All"),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!("{base}/{ID}/cancel_all"),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!(
                "/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
            ),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!(
                "/v2.0/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
            ),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!(
                "/beta/identityGovernance/scheduledPermissionsRequests/{ID}/cancelAll"
            ),
            RouteError::UnrecognizedCancelAll,
        ),
        (
            format!("{base}(id='{ID}')/cancelAll"),
            RouteError::BadRequestId,
        ),
        ("/beta/$batch/x".to_string(), RouteError::UnrecognizedBatch),
        ("/batch".to_string(), RouteError::UnrecognizedBatch),
        ("/beta/$batch()".to_string(), RouteError::UnrecognizedBatch),
        (format!("{base}/''/cancelAll"), RouteError::BadRequestId),
        (format!("{base}/a%20b/cancelAll"), RouteError::BadRequestId),
        (format!("{base}/a*b/cancelAll"), RouteError::BadRequestId),
        (
            format!("https://graph.microsoft.com{base}/{ID}/cancelAll"),
            RouteError::NotOriginForm,
        ),
    ];
    for (target, expected) in cases {
        assert_eq!(route(&target), Err(expected), "{target}");
    }
}

#[test]
fn connect_is_refused() {
    let uri: Uri = "graph.microsoft.com:443".parse().expect("authority form");
    let classified = classify(&Method::CONNECT, &uri, http::Version::HTTP_11);
    assert_eq!(classified, Err(RouteError::Connect));
}

#[test]
fn other_routes_and_batch_are_told_apart() {
    assert_eq!(route("/v1.0/me"), Ok(Route::Other));
    assert_eq!(route("/"), Ok(Route::Other));
    assert_eq!(
        route(
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests"
        ),
        Ok(Route::Other)
    );
    assert_eq!(
        route("/beta/$BATCH"),
        Ok(Route::Batch {
            version: Version::Beta
        })
    );
    assert_eq!(
        route("/v1.0/%24batch"),
        Ok(Route::Batch {
            version: Version::V1
        })
    );
    assert_eq!(route("/v1.0/users/batcher@contoso.com"), Ok(Route::Other));
    assert_eq!(
        route(
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/x"
        ),
        Ok(Route::Other)
    );
}

#[test]
fn batch_urls_are_classified_like_targets() {
    let relative = format!(
        "identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
    );
    let call = Ok(Route::CancelAll(CancelAll {
        version: Version::V1,
        request_id: ID.into(),
    }));
    assert_eq!(classify_relative(Version::V1, &relative), call);
    assert_eq!(
        classify_relative(Version::V1, &format!("/{relative}")),
        call
    );
    assert_eq!(
        classify_relative(Version::V1, &format!("{relative}?a=b")),
        call
    );
    assert_eq!(
        classify_relative(Version::Beta, "/me?$select=id"),
        Ok(Route::Other)
    );
    assert_eq!(
        classify_relative(Version::Beta, &format!("{relative}#frag")),
        Err(RouteError::ForbiddenCharacter)
    );
    assert_eq!(
        classify_relative(Version::Beta, "https://graph.microsoft.com/beta/me"),
        Err(RouteError::NotOriginForm)
    );
    assert_eq!(
        classify_relative(Version::Beta, "$batch"),
        Ok(Route::Batch {
            version: Version::Beta
        })
    );
}
