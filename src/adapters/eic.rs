//! EC2 Instance Connect's key push (spec §B): `SendSSHPublicKey` with
//! aws-sdk-ec2instanceconnect on the command's shared AWS configuration, its errors sorted as
//! §B.4 says, and the [`KeyPusher`] the SSH client pushes its in-memory key with. The key is an
//! ed25519 key generated once per run: never written anywhere, never logged, zeroized on drop
//! (ssh-key's `Ed25519PrivateKey` wipes itself).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};

use crate::adapters::aws;
use crate::adapters::cache::Cache;
use crate::adapters::ssh::client::{KeyPusher, PushError, PushFailure, PushTo};
use crate::error::HopError;
use crate::settings::Settings;

/// What the instance does with a pushed key, for the hints of a refused one (spec §B.4).
pub const REFUSED_HINTS: [&str; 3] = [
    "the instance must run the ec2-instance-connect package (Amazon Linux 2 and AL2023 standard AMIs, \
     Ubuntu 20.04+; not AL2023 minimal), with no custom AuthorizedKeysCommand overriding it in sshd_config",
    "it reads pushed keys from the instance metadata service (IMDS must be enabled), for a user that exists \
     on the image (-l USER, tag hop:user)",
    "a pushed key is valid for 60 s, judged by the instance's clock: more than 60 s between push and login, \
     or a wrong clock, refuses it",
];

/// Pushes this run's in-memory key (see the module doc) for the hops that log in with one.
pub struct Pusher {
    settings: Settings,
    key: Arc<russh::keys::PrivateKey>,
    /// `ssh-ed25519 BASE64`, without comment: exactly 80 characters (spec §B.1).
    line: String,
}

impl Pusher {
    pub fn new(settings: &Settings) -> Pusher {
        let key = russh::keys::PrivateKey::random(&mut russh::keys::key::safe_rng(), russh::keys::Algorithm::Ed25519)
            .expect("ed25519 keys can always be generated");
        let line = public_line(key.public_key());
        Pusher { settings: settings.clone(), key: Arc::new(key), line }
    }
}

/// `TYPE BASE64` of a public key, without its comment.
fn public_line(key: &russh::keys::PublicKey) -> String {
    let text = key.to_openssh().unwrap_or_default();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

impl KeyPusher for Pusher {
    fn key(&self) -> Arc<russh::keys::PrivateKey> {
        self.key.clone()
    }

    fn push<'a>(
        &'a self,
        to: &'a PushTo,
        user: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PushError>> + Send + 'a>> {
        Box::pin(async move {
            let region = match &to.region {
                Some(r) => r.clone(),
                None => region_of(&self.settings, &to.instance_id).await?,
            };
            send(&self.settings, &to.instance_id, &region, user, &self.line).await
        })
    }
}

/// The region of `instance`: where the discovery cache has it (any age: it was just used to plan
/// the route), else the first region of the command.
async fn region_of(settings: &Settings, instance: &str) -> Result<String, PushError> {
    let regions = aws::regions(settings).await.map_err(|e| PushError {
        kind: PushFailure::Unavailable,
        message: e.to_string(),
        hints: e.hints(),
    })?;
    let cache = Cache::new(&settings.cache_dir, &settings.profile, settings.cache_scope().as_deref());
    let now = SystemTime::now();
    let found = regions.iter().find(|r| {
        cache.load(r, now, Duration::MAX).is_some_and(|cached| cached.instances.iter().any(|i| i.id == instance))
    });
    Ok(found.or(regions.first()).cloned().unwrap_or_default())
}

/// `SendSSHPublicKey(InstanceId, InstanceOSUser, SSHPublicKey)`, no AvailabilityZone (spec
/// §B.3: a cached AZ may be stale, and the API does not need it).
pub async fn send(settings: &Settings, instance: &str, region: &str, user: &str, line: &str) -> Result<(), PushError> {
    let client = aws::instance_connect(settings, region).await;
    let sent =
        client.send_ssh_public_key().instance_id(instance).instance_os_user(user).ssh_public_key(line).send().await;
    match sent {
        Ok(out) => {
            tracing::debug!(
                "EC2 Instance Connect: key pushed to {instance} as {user} (request {})",
                out.request_id().unwrap_or("?")
            );
            Ok(())
        }
        Err(SdkError::ServiceError(se)) => {
            let e = se.err();
            Err(classify(
                e.code().unwrap_or("Unknown"),
                e.message().unwrap_or_default(),
                instance,
                user,
                region,
                settings,
            ))
        }
        Err(e) => {
            let failure = aws::classify(e, region, "EC2 Instance Connect");
            let HopError::Aws { message, hints } =
                failure.into_error_for(&settings.profile, settings.endpoint.as_deref(), region)
            else {
                unreachable!("into_error_for makes AWS errors")
            };
            Err(PushError { kind: PushFailure::Unavailable, message, hints })
        }
    }
}

/// A `SendSSHPublicKey` error code as spec §B.4 sorts it, with the message and the fix.
pub fn classify(code: &str, said: &str, instance: &str, user: &str, region: &str, settings: &Settings) -> PushError {
    let said_hint = || (!said.is_empty()).then(|| format!("EC2 Instance Connect said {code}: {said}"));
    let profile = &settings.profile;
    let (kind, message, mut hints) = match code {
        "AccessDeniedException" | "AccessDenied" | "AuthException" => (
            PushFailure::Denied,
            format!(
                "not allowed to push a key to {instance} as {user} (ec2-instance-connect:SendSSHPublicKey, condition ec2:osuser)"
            ),
            vec![
                format!(
                    "the identity of profile {profile:?} needs ec2-instance-connect:SendSSHPublicKey on \
                     arn:aws:ec2:{region}:ACCOUNT:instance/{instance} (with ec2:osuser = {user} if the policy has that condition)"
                ),
                "or log in with a key of your own: -i KEY, or auth = \"key\" in ~/.config/hop/config.toml".into(),
            ],
        ),
        "EC2InstanceStateInvalidException" => (
            PushFailure::NotRunning,
            format!("{instance} is stopped"),
            vec![format!("start it: aws ec2 start-instances --region {region} --instance-ids {instance}")],
        ),
        "EC2InstanceNotFoundException" => (
            PushFailure::NotFound,
            format!("EC2 Instance Connect does not know {instance} in {region}"),
            vec![format!(
                "the instance may be gone; `hop ls --refresh` shows what runs now (hop's cache may be stale)"
            )],
        ),
        "InvalidArgsException" => (
            PushFailure::InvalidArgs,
            format!("EC2 Instance Connect refused to push a key to {instance} as {user}"),
            vec!["check the user name (-l USER, tag hop:user, [hosts.NAME] user)".into()],
        ),
        _ => (
            PushFailure::Unavailable,
            format!("cannot push a key to {instance} in {region}: EC2 Instance Connect answered {code}"),
            vec!["try again in a moment (the AWS SDK already retried; AWS_MAX_ATTEMPTS sets how often)".into()],
        ),
    };
    if let Some(h) = said_hint() {
        hints.insert(0, h);
    }
    PushError { kind, message, hints }
}

/// The user-facing error of a failed push: exit 2 for a stale target or bad arguments, else 255.
pub fn hop_error(e: PushError) -> HopError {
    match e.kind {
        PushFailure::NotFound | PushFailure::InvalidArgs => HopError::Usage { message: e.message, hints: e.hints },
        _ => HopError::Aws { message: e.message, hints: e.hints },
    }
}

/// The line to push for the user's own public key file (`hop proxy --push-key FILE`): its key,
/// without the comment. Only ed25519 and RSA: the instance ignores every other type (its
/// parser takes only key lines starting with `ssh`, spec §B.2).
pub fn own_key_line(text: &str) -> Result<String, String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).ok_or("the file is empty")?;
    let mut words = line.split_whitespace();
    let (kind, data) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    match kind {
        "ssh-ed25519" | "ssh-rsa" => {}
        k if k.starts_with("ecdsa-") || k.starts_with("sk-") => {
            return Err(format!(
                "{k} keys are ignored by EC2 Instance Connect on the instance (it takes ssh-ed25519 and ssh-rsa only); \
                 push an ed25519 key: ssh-keygen -t ed25519"
            ));
        }
        k => return Err(format!("not an OpenSSH public key of a type EC2 Instance Connect takes: {k:?}")),
    }
    let line = format!("{kind} {data}");
    russh::keys::PublicKey::from_openssh(&line).map_err(|e| format!("not a valid {kind} public key: {e}"))?;
    Ok(line)
}

/// `hop proxy --push-key FILE`: push the user's own public key for `instance` as `user`.
pub async fn push_file(
    settings: &Settings,
    file: &Path,
    instance: &str,
    region: &str,
    user: &str,
) -> Result<(), HopError> {
    let bad = |why: String| HopError::Usage {
        message: format!("--push-key {}: {why}", file.display()),
        hints: vec!["give the public key file (.pub) of an ed25519 or RSA key".into()],
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let line = own_key_line(&text).map_err(bad)?;
    send(settings, instance, region, user, &line).await.map_err(hop_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        crate::settings::for_tests()
    }

    #[test]
    fn the_pushed_key_is_an_ed25519_line_of_80_characters_without_comment() {
        let settings = settings();
        let a = Pusher::new(&settings);
        assert_eq!(a.line.len(), 80, "{}", a.line);
        assert!(a.line.starts_with("ssh-ed25519 AAAA"), "{}", a.line);
        assert_eq!(a.line.split(' ').count(), 2);
        assert_eq!(russh::keys::PublicKey::from_openssh(&a.line).unwrap(), *a.key().public_key());
        // One key per run, a new one each run.
        assert_ne!(Pusher::new(&settings).line, a.line);
    }

    #[test]
    fn own_key_files_table() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8ht8Z3j6yDWPBHQtOp/R9rjWvfMYo3MSA/K6q8D+QT me@laptop\n";
        assert_eq!(
            own_key_line(ed).unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB8ht8Z3j6yDWPBHQtOp/R9rjWvfMYo3MSA/K6q8D+QT"
        );
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEX me\n";
        let e = own_key_line(ecdsa).unwrap_err();
        assert!(e.contains("ignored by EC2 Instance Connect"), "{e}");
        let sk = "sk-ssh-ed25519@openssh.com AAAA me\n";
        assert!(own_key_line(sk).unwrap_err().contains("ignored"));
        assert!(own_key_line("").is_err());
        assert!(own_key_line("-----BEGIN OPENSSH PRIVATE KEY-----\n").is_err());
        assert!(own_key_line("ssh-ed25519 notbase64\n").unwrap_err().contains("not a valid"));
    }

    #[test]
    fn push_errors_table() {
        let settings = settings();
        let rows = [
            (
                "AuthException",
                PushFailure::Denied,
                255,
                "not allowed to push a key to i-0abc as ec2-user (ec2-instance-connect:SendSSHPublicKey, condition ec2:osuser)",
            ),
            (
                "AccessDeniedException",
                PushFailure::Denied,
                255,
                "not allowed to push a key to i-0abc as ec2-user (ec2-instance-connect:SendSSHPublicKey, condition ec2:osuser)",
            ),
            ("EC2InstanceStateInvalidException", PushFailure::NotRunning, 255, "i-0abc is stopped"),
            (
                "EC2InstanceNotFoundException",
                PushFailure::NotFound,
                2,
                "EC2 Instance Connect does not know i-0abc in us-east-1",
            ),
            (
                "InvalidArgsException",
                PushFailure::InvalidArgs,
                2,
                "EC2 Instance Connect refused to push a key to i-0abc as ec2-user",
            ),
            (
                "ThrottlingException",
                PushFailure::Unavailable,
                255,
                "cannot push a key to i-0abc in us-east-1: EC2 Instance Connect answered ThrottlingException",
            ),
            (
                "EC2InstanceUnavailableException",
                PushFailure::Unavailable,
                255,
                "cannot push a key to i-0abc in us-east-1: EC2 Instance Connect answered EC2InstanceUnavailableException",
            ),
        ];
        for (code, kind, exit, message) in rows {
            let e = classify(code, "because", "i-0abc", "ec2-user", "us-east-1", &settings);
            assert_eq!((e.kind, e.message.as_str()), (kind, message), "{code}");
            assert_eq!(e.hints[0], format!("EC2 Instance Connect said {code}: because"));
            assert_eq!(hop_error(e).exit_code(), exit, "{code}");
        }
    }
}
