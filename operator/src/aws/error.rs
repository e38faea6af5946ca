//! One error type for every AWS adapter, classified by what the engine must do about it.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS call ended in; decides retrying, exit codes and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The resource does not exist (treated as success while deleting).
    NotFound,
    /// The caller lacks permission; never retried.
    AccessDenied,
    /// AWS rate-limited the call and the SDK's retries ran out; worth another try later.
    Throttled,
    /// AWS rejected the request as invalid (a bad subnet, a priority in use, ...); never retried.
    Invalid,
    /// The resource exists already or is in a state that forbids the call.
    Conflict,
    /// A network error, a timeout or a 5xx; worth another try.
    Transient,
    /// AWS has not caught up with a change just made (eventual consistency): a dependent write refused
    /// because the resource it names is not visible to it yet. The request was not carried out; the
    /// actor repeats it after a bounded backoff. Only the known messages are classified so
    /// ([`propagating`]).
    Propagating,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether trying again later can help.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// A stable label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Transient => "transient",
            ErrorKind::Propagating => "propagating",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A failed AWS call: which one, its kind, and AWS's own code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} failed ({kind}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct AwsError {
    /// The service (`ecs`, `ecr`, `elbv2`, `servicediscovery`, `application-autoscaling`, `apigatewayv2`).
    pub service: &'static str,
    /// The operation (`UpdateService`).
    pub operation: &'static str,
    /// The classification.
    pub kind: ErrorKind,
    /// AWS's error code (`ThrottlingException`, `AccessDeniedException`, ...).
    pub code: Option<String>,
    /// AWS's message, or the transport error.
    pub message: String,
}

impl AwsError {
    /// An error of this kind, made by ecsop itself (an answer missing a field it needs, ...).
    pub fn new(service: &'static str, operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        AwsError { service, operation, kind, code: None, message: message.into() }
    }

    /// [`AwsError::from_sdk`] as a `map_err` adapter, as every SDK adapter uses it.
    pub fn sdk<E, R>(service: &'static str, operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        move |e| Self::from_sdk(service, operation, e)
    }

    /// Classify an SDK error of `service`'s `operation`.
    pub fn from_sdk<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(ctx) => {
                let e = ctx.err();
                let code = e.code().map(str::to_string);
                let message = e.message().map(str::to_string).unwrap_or_else(|| e.to_string());
                let kind = classify_code(code.as_deref().unwrap_or_default(), &message);
                AwsError { service, operation, kind, code, message }
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                AwsError { service, operation, kind: ErrorKind::Transient, code: None, message: render_chain(&err) }
            }
            _ => AwsError { service, operation, kind: ErrorKind::Other, code: None, message: render_chain(&err) },
        }
    }

    /// Whether the call failed because the resource is missing.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// Deletes and deregistrations treat "already gone" as done.
pub trait MissingOk {
    /// `Ok(())` on success or on a NotFound error; other errors pass through.
    fn missing_ok(self) -> Result<(), AwsError>;
}

impl<T> MissingOk for Result<T, AwsError> {
    fn missing_ok(self) -> Result<(), AwsError> {
        match self {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn render_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The refusals AWS answers right after a change it has not propagated yet, recognised by their text
/// (lower case): Application Auto Scaling's RegisterScalableTarget right after ECS CreateService, and
/// ECS CreateService or UpdateService right after the listener rule that puts the target group behind a
/// load balancer.
pub fn propagating(message: &str) -> bool {
    message.contains("ecs service doesn't exist") || message.contains("does not have an associated load balancer")
}

/// Map an AWS error code (and, where AWS reuses one code for several meanings, its message) to a kind.
pub fn classify_code(code: &str, message: &str) -> ErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "SlowDown"
        | "RequestThrottled"
        | "ProvisionedThroughputExceededException" => ErrorKind::Throttled,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "AuthFailure" => ErrorKind::AccessDenied,
        "RepositoryNotFoundException"
        | "ImageNotFoundException"
        | "ResourceNotFound"
        | "LifecyclePolicyNotFoundException"
        | "ServiceNotFoundException"
        | "ServiceNotFound"
        | "ClusterNotFoundException"
        | "TargetGroupNotFound"
        | "RuleNotFound"
        | "ListenerNotFound"
        | "LoadBalancerNotFound"
        | "NamespaceNotFound"
        | "ObjectNotFoundException"
        | "ResourceNotFoundException"
        | "NotFoundException" => ErrorKind::NotFound,
        "RepositoryAlreadyExistsException"
        | "ResourceConflict"
        | "ConcurrentModificationException"
        | "DuplicateTargetGroupName"
        | "PriorityInUse"
        | "ServiceAlreadyExists"
        | "ResourceInUse"
        | "ResourceInUseException"
        | "RepositoryNotEmptyException"
        | "ConcurrentUpdateException"
        | "ConcurrentUpdate"
        | "ConflictException" => ErrorKind::Conflict,
        "ServiceNotActiveException" => ErrorKind::NotFound,
        "ClientException"
        | "InvalidParameterException"
        | "InvalidParameterValue"
        | "ValidationError"
        | "ValidationException"
        | "InvalidConfigurationRequest"
        | "InvalidTargetException"
        | "InvalidInput"
        | "InvalidParameterCombination"
        | "InvalidParameter"
        | "TooManyTargetGroups"
        | "TooManyRules"
        | "TooManyTags"
        | "TooManyTagsException"
        | "LimitExceededException"
        | "BadRequestException" => {
            // ECS answers several missing-resource cases with a ClientException and a message only.
            let lower = message.to_ascii_lowercase();
            if propagating(&lower) {
                ErrorKind::Propagating
            } else if lower.contains("not found")
                || lower.contains("does not exist")
                || lower.contains("unable to describe")
            {
                ErrorKind::NotFound
            } else if lower.contains("not authorized") || lower.contains("access denied") {
                ErrorKind::AccessDenied
            } else {
                ErrorKind::Invalid
            }
        }
        "ServerException"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "InternalServiceError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_kinds_the_engine_acts_on() {
        assert_eq!(classify_code("ThrottlingException", ""), ErrorKind::Throttled);
        assert_eq!(classify_code("Throttling", ""), ErrorKind::Throttled);
        assert_eq!(classify_code("AccessDeniedException", ""), ErrorKind::AccessDenied);
        assert_eq!(classify_code("AccessDenied", ""), ErrorKind::AccessDenied);
        assert_eq!(classify_code("RepositoryNotFoundException", ""), ErrorKind::NotFound);
        // CloudWatch answers with its Query codes (awsQueryCompatible): DeleteAlarms, SetAlarmState.
        assert_eq!(classify_code("ResourceNotFound", ""), ErrorKind::NotFound);
        assert_eq!(classify_code("ResourceConflict", ""), ErrorKind::Conflict);
        assert_eq!(classify_code("InternalServiceError", ""), ErrorKind::Transient);
        assert_eq!(classify_code("ClientException", "Unable to describe task definition."), ErrorKind::NotFound);
        assert_eq!(classify_code("ClientException", "Service was not found."), ErrorKind::NotFound);
        assert_eq!(classify_code("InvalidParameterException", "subnet is invalid"), ErrorKind::Invalid);
        // Eventual consistency: refused now, accepted once AWS caught up.
        assert_eq!(
            classify_code("ValidationException", "ECS service doesn't exist: service/api-cluster/books-api"),
            ErrorKind::Propagating
        );
        assert_eq!(
            classify_code(
                "InvalidParameterException",
                "The target group with targetGroupArn arn:x does not have an associated load balancer."
            ),
            ErrorKind::Propagating
        );
        assert_eq!(classify_code("PriorityInUse", ""), ErrorKind::Conflict);
        assert_eq!(classify_code("InternalFailure", ""), ErrorKind::Transient);
        assert_eq!(classify_code("Whatever", ""), ErrorKind::Other);
        assert!(ErrorKind::Throttled.is_retryable() && !ErrorKind::AccessDenied.is_retryable());
    }

    /// API Gateway (apigatewayv2) names its errors generically.
    #[test]
    fn api_gateway_codes_map_like_the_others() {
        assert_eq!(classify_code("NotFoundException", "Invalid API identifier specified abc"), ErrorKind::NotFound);
        assert_eq!(classify_code("ConflictException", "Route already exists"), ErrorKind::Conflict);
        assert_eq!(classify_code("BadRequestException", "Invalid route key"), ErrorKind::Invalid);
        assert_eq!(classify_code("TooManyRequestsException", "Too Many Requests"), ErrorKind::Throttled);
        assert_eq!(classify_code("AccessDeniedException", ""), ErrorKind::AccessDenied);
    }

    #[test]
    fn the_message_names_service_operation_kind_and_code() {
        let e = AwsError {
            service: "ecs",
            operation: "UpdateService",
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            message: "not authorized".into(),
        };
        assert_eq!(e.to_string(), "ecs UpdateService failed (access_denied, AccessDeniedException): not authorized");
    }
}
