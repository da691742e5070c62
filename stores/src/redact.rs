//! Connection strings as they may be printed: the password and any secret
//! query option replaced by `***`, in the store's description, in errors
//! and in logs.

use crate::StoreError;

/// Query options whose value is a secret (compared in lower case).
const SECRET_OPTIONS: [&str; 5] = [
    "password",
    "secret",
    "token",
    "authmechanismproperties",
    "tlscertificatekeyfilepassword",
];

fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_OPTIONS.iter().any(|s| k.contains(s))
}

/// `uri` with its password and secret options replaced by `***`:
/// `mongodb://u:***@host/?authSource=admin`.
pub fn uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        // Not a URI: nothing can be told apart, so print nothing of it
        // that could be a secret.
        return if uri.contains('@') {
            "***".to_string()
        } else {
            uri.to_string()
        };
    };
    // The user info ends at the last '@' before the path or query.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => format!("{userinfo}@{hosts}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let options: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret_option(k) => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", options.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The secrets of `uri`: its password (as written and percent-decoded)
/// and the values of its secret options, for scrubbing messages.
pub fn secrets(uri: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, rest)) = uri.split_once("://") else {
        return out;
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            out.push(password.to_string());
            out.push(percent_decode(password));
        }
    }
    if let Some((_, query)) = tail.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                if is_secret_option(k) {
                    out.push(v.to_string());
                    out.push(percent_decode(v));
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// `text` with every secret of `uri` replaced by `***`.
pub fn scrub(text: &str, uri: &str) -> String {
    let mut text = text.to_string();
    // Longest first, so that a secret that contains another goes whole.
    let mut secrets = secrets(uri);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        text = text.replace(&s, "***");
    }
    text
}

/// `e` with every secret of `uri` scrubbed from its message.
pub fn error(e: StoreError, uri: &str) -> StoreError {
    match e {
        StoreError::Server {
            server,
            message,
            retryable,
        } => StoreError::Server {
            server,
            message: scrub(&message, uri),
            retryable,
        },
        StoreError::Corrupt(m) => StoreError::Corrupt(scrub(&m, uri)),
        StoreError::Layout(m) => StoreError::Layout(scrub(&m, uri)),
        other => other,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_secret_options_are_hidden() {
        assert_eq!(
            uri("mongodb://app:s3cr%40t@db1:27017,db2:27017/shop?authSource=admin"),
            "mongodb://app:***@db1:27017,db2:27017/shop?authSource=admin"
        );
        assert_eq!(
            uri("mongodb+srv://app:hunter2@cluster0.example.net/?retryWrites=true&tlsCertificateKeyFilePassword=pw9"),
            "mongodb+srv://app:***@cluster0.example.net/?retryWrites=true&tlsCertificateKeyFilePassword=***"
        );
        assert_eq!(
            uri("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
        // A user without a password (X.509) stays.
        assert_eq!(
            uri("mongodb://CN=client@h/?authMechanism=MONGODB-X509"),
            "mongodb://CN=client@h/?authMechanism=MONGODB-X509"
        );
        // A password holding '@' (not percent-encoded): the last '@' ends it.
        assert_eq!(uri("mongodb://u:p@ss@h:1"), "mongodb://u:***@h:1");
        assert_eq!(uri("u:p@host"), "***");
    }

    #[test]
    fn messages_are_scrubbed_of_raw_and_decoded_secrets() {
        let u = "mongodb://app:s3cr%40t@h/?authMechanismProperties=AWS_SESSION_TOKEN:tok";
        assert_eq!(
            scrub(
                "failed for app:s3cr@t and s3cr%40t with AWS_SESSION_TOKEN:tok",
                u
            ),
            "failed for app:*** and *** with ***"
        );
    }
}
