//! The verification token that opens Authento's hosted flow: an HS256 JWT signed with the
//! Authento JWT secret, with exactly the claims of Authento's account-based guide.

use super::VerificationType;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Claim order follows the guide; `ut`/`lang` only when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user as Authento knows it (`session::Subject`: unique per tenant and user, never the
    /// app's own user id): Authento ties its results to it.
    pub sub: String,
    /// Always "Authento".
    pub aud: String,
    pub iat: i64,
    /// ASSUMPTION: Authento documents no lifetime; we bound the token's use.
    pub exp: i64,
    pub vt: VerificationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ut: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

pub const AUDIENCE: &str = "Authento";

pub fn sign(claims: &Claims, jwt_secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(jwt_secret.as_bytes()),
    )
}

/// `{verify_url}/verify/token?jwt=<token>`, the page the app opens in a popup.
pub fn verify_url(base: &str, token: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/verify/token", base.trim_end_matches('/')))
        .expect("verify URL was validated at start");
    url.query_pairs_mut().append_pair("jwt", token);
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    #[test]
    fn token_verifies_with_aud_authento_and_carries_the_guide_claims() {
        let claims = Claims {
            iss: "example.com".into(),
            sub: "user-42".into(),
            aud: AUDIENCE.into(),
            iat: 1_800_000_000,
            exp: 1_800_000_900,
            vt: VerificationType::Basic,
            ut: None,
            lang: Some("de".into()),
        };
        let token = sign(&claims, "jwt-secret").unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["Authento"]);
        v.validate_exp = false;
        let got = decode::<serde_json::Value>(&token, &DecodingKey::from_secret(b"jwt-secret"), &v)
            .unwrap();
        assert_eq!(got.claims["vt"], "BASIC");
        assert_eq!(got.claims["lang"], "de");
        assert!(got.claims.get("ut").is_none());
        assert_eq!(got.header.alg, Algorithm::HS256);
    }

    #[test]
    fn verify_url_escapes_the_token() {
        assert_eq!(
            verify_url("https://app.authento.io/", "a.b.c"),
            "https://app.authento.io/verify/token?jwt=a.b.c"
        );
    }
}
