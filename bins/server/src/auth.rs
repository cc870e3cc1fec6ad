//! Bearer-token authentication: HS256 JWTs as the NanoStory backend issues them
//! (`{userId, email, role, exp}` signed with `JWT_SECRET`).

use std::future::{Ready, ready};
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use nosyntask_domain::{UserId, Viewer};
use serde_json::{Map, Value, json};

use crate::config::Secret;
use crate::error::ApiError;

/// Why a key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid JWT secret: {0}")]
    Key(String),
    #[error("cannot sign token: {0}")]
    Sign(String),
    #[error("development secret file {path}: {message}")]
    DevSecret { path: String, message: String },
}

/// The keys and validation rules, built once at start and shared by all requests.
#[derive(Clone)]
pub struct JwtAuth {
    decoding: Arc<DecodingKey>,
    encoding: Arc<EncodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

impl JwtAuth {
    pub fn new(secret: &Secret) -> Result<Self, AuthError> {
        let bytes = secret.expose().as_bytes();
        let decoding =
            DecodingKey::from_secret(bytes).map_err(|e| AuthError::Key(e.to_string()))?;
        let encoding =
            EncodingKey::from_secret(bytes).map_err(|e| AuthError::Key(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        // `nbf` is optional, but a token that says it is not valid yet is refused.
        validation.validate_nbf = true;
        // NanoStory's backend (node jsonwebtoken) allows no clock tolerance either; the one
        // leeway applies to `exp` and `nbf` alike.
        validation.leeway = 0;
        validation.validate_aud = false;
        Ok(JwtAuth {
            decoding: Arc::new(decoding),
            encoding: Arc::new(encoding),
            validation: Arc::new(validation),
        })
    }

    /// Checks a token and returns who it is for.
    pub fn verify(&self, token: &str) -> Result<Viewer, ApiError> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|err| {
                    use jsonwebtoken::errors::ErrorKind;
                    let reason = match err.kind() {
                        ErrorKind::ExpiredSignature => "token expired",
                        ErrorKind::ImmatureSignature => {
                            "token is not valid yet (its nbf claim is in the future)"
                        }
                        ErrorKind::InvalidSignature => "token signature is invalid",
                        ErrorKind::MissingRequiredClaim(_) => "token has no exp claim",
                        ErrorKind::InvalidAlgorithm => "token must be signed with HS256",
                        _ => "token is malformed",
                    };
                    ApiError::unauthorized(reason)
                })?;
        viewer_of(&data.claims)
    }

    /// Signs a token like the NanoStory backend does.
    pub fn issue(
        &self,
        user_id: UserId,
        admin: bool,
        ttl: std::time::Duration,
    ) -> Result<String, AuthError> {
        let exp =
            chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = json!({
            "userId": user_id,
            "role": if admin { "admin" } else { "user" },
            "iat": chrono::Utc::now().timestamp(),
            "exp": exp,
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}

fn viewer_of(claims: &Map<String, Value>) -> Result<Viewer, ApiError> {
    let user_id = claims
        .get("userId")
        .and_then(user_id_of)
        .or_else(|| claims.get("sub").and_then(user_id_of))
        .ok_or_else(|| ApiError::unauthorized("token has no valid userId claim"))?;
    let is_admin = match claims.get("role") {
        None | Some(Value::Null) => false,
        Some(Value::String(role)) => role == "admin",
        Some(_) => return Err(ApiError::unauthorized("token role claim is not a string")),
    };
    Ok(Viewer { user_id, is_admin })
}

fn user_id_of(value: &Value) -> Option<UserId> {
    let id = match value {
        // Integral floats (`7.0`) too, within the range a double holds exactly.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }?;
    (id > 0).then_some(id)
}

/// The caller of an API route, from its `Authorization: Bearer` header.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Viewer);

impl Caller {
    /// 403 unless the token's role is admin (the engine statistics).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin {
            return Ok(());
        }
        Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            "engine statistics need a token with role admin",
        ))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// Like [`Caller`], but also accepts the token as query parameter `access_token` when there is
/// no `Authorization` header: browsers' `EventSource` cannot send headers.
#[derive(Debug, Clone, Copy)]
pub struct StreamCaller(pub Viewer);

impl FromRequest for StreamCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let result = if req.headers().contains_key(AUTHORIZATION) {
            authenticate(req)
        } else {
            token_from_query(req.query_string())
                .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))
                .and_then(|token| jwt(req)?.verify(&token).map(Caller))
        };
        ready(result.map(|caller| StreamCaller(caller.0)))
    }
}

fn token_from_query(query: &str) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(query)
        .ok()
        .and_then(|q| q.get("access_token").cloned())
        .filter(|t| !t.is_empty())
}

fn jwt(req: &HttpRequest) -> Result<&JwtAuth, ApiError> {
    req.app_data::<web::Data<JwtAuth>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| ApiError::unauthorized("authentication is not configured"))
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let auth = jwt(req)?;
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    let header = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be `Bearer <token>`"))?;
    auth.verify(token).map(Caller)
}

/// Reads the development secret from `path`, creating it (mode 0600) on first use.
pub fn dev_secret(path: &Path) -> Result<Secret, AuthError> {
    let fail = |message: String| AuthError::DevSecret {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 16 => return Ok(Secret::new(text.trim())),
        Ok(_) => return Err(fail("exists but holds no usable secret".to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(fail(err.to_string())),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    let secret: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..48)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect()
    };
    write_private(path, &secret).map_err(|e| fail(e.to_string()))?;
    Ok(Secret::new(secret))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn auth() -> JwtAuth {
        JwtAuth::new(&Secret::new("test-secret-0123456789")).unwrap()
    }

    fn sign(claims: Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn exp() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn accepts_nanostory_backend_tokens() {
        let token = sign(
            json!({"userId": 42, "email": "a@b.c", "role": "user", "exp": exp(), "iat": 1}),
            "test-secret-0123456789",
        );
        assert_eq!(auth().verify(&token).unwrap(), Viewer::user(42));
        let admin = sign(
            json!({"userId": 7, "role": "admin", "exp": exp()}),
            "test-secret-0123456789",
        );
        assert_eq!(auth().verify(&admin).unwrap(), Viewer::admin(7));
    }

    #[test]
    fn accepts_numeric_sub() {
        for sub in [json!(9), json!("9")] {
            let token = sign(json!({"sub": sub, "exp": exp()}), "test-secret-0123456789");
            assert_eq!(auth().verify(&token).unwrap(), Viewer::user(9));
        }
    }

    #[test]
    fn rejects_bad_tokens() {
        let secret = "test-secret-0123456789";
        let cases = [
            sign(json!({"userId": 1}), secret),
            sign(
                json!({"userId": 1, "exp": chrono::Utc::now().timestamp() - 5}),
                secret,
            ),
            sign(json!({"userId": 1, "exp": exp()}), "another-secret-xyz"),
            sign(json!({"email": "x", "exp": exp()}), secret),
            sign(json!({"sub": "alice", "exp": exp()}), secret),
            sign(json!({"userId": 1e40, "exp": exp()}), secret),
            sign(json!({"userId": 0, "exp": exp()}), secret),
            sign(json!({"userId": 1, "exp": exp(), "role": 3}), secret),
            "not.a.token".to_owned(),
            String::new(),
        ];
        for token in cases {
            let err = auth().verify(&token).unwrap_err();
            assert_eq!(err.status.as_u16(), 401, "{token}");
        }
    }

    #[test]
    fn nbf_is_enforced() {
        let secret = "test-secret-0123456789";
        let now = chrono::Utc::now().timestamp();
        let early = sign(json!({"userId": 1, "nbf": now + 60, "exp": exp()}), secret);
        let err = auth().verify(&early).unwrap_err();
        assert_eq!(err.status.as_u16(), 401);
        assert!(err.message.contains("nbf"), "{}", err.message);
        let valid = sign(json!({"userId": 1, "nbf": now - 1, "exp": exp()}), secret);
        assert_eq!(auth().verify(&valid).unwrap(), Viewer::user(1));
        // The leeway is 0, as for `exp`: a token is valid from the second its nbf names.
        let boundary = sign(json!({"userId": 1, "nbf": now, "exp": exp()}), secret);
        assert_eq!(auth().verify(&boundary).unwrap(), Viewer::user(1));
    }

    #[test]
    fn issued_tokens_verify() {
        let a = auth();
        let token = a.issue(5, true, Duration::from_secs(60)).unwrap();
        assert_eq!(a.verify(&token).unwrap(), Viewer::admin(5));
    }

    #[test]
    fn dev_secret_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jwt-secret");
        let first = dev_secret(&path).unwrap();
        let second = dev_secret(&path).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
