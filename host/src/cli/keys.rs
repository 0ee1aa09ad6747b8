//! Keys for signed (SECURED) records: `kad keygen` makes an ed25519 key pair, `kad sign` writes
//! the JSON body of a signed `POST /dht/KEY`, so the HTTP API can be used without writing any
//! cryptography.

use std::path::{Path, PathBuf};

use clap::Args;
use kad_core::signed::Keypair;
use kad_host::{Encoding, Value};
use serde_json::json;

use super::{Failure, FAILURE, INPUT};

/// Options of `kad keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (hex, readable only by you); the public key goes to
    /// FILE.pub.
    #[arg(long, default_value = "kad.key")]
    out: PathBuf,
}

/// Options of `kad sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The secret key file (from `kad keygen`).
    keyfile: PathBuf,
    /// The key (the URL key of `POST /dht/KEY`; BEP 44's salt).
    key: String,
    /// The value.
    value: String,
    /// Sequence number; holders keep only the highest, so raise it to replace the value.
    #[arg(long)]
    seq: u64,
    /// VALUE is hex-encoded bytes, not text.
    #[arg(long, conflicts_with = "base64")]
    hex: bool,
    /// VALUE is base64-encoded bytes, not text.
    #[arg(long)]
    base64: bool,
    /// UNIX time (seconds) after which the node refuses this body.
    #[arg(long, value_name = "SECONDS")]
    exp_time: Option<u64>,
}

/// The value of VALUE as given with `--hex` or `--base64` (text otherwise), and its encoding.
pub fn parse_value(value: &str, hex: bool, base64: bool) -> Result<(Value, Encoding), Failure> {
    let encoding = match (hex, base64) {
        (true, _) => Encoding::Hex,
        (_, true) => Encoding::Base64,
        _ => Encoding::Utf8,
    };
    let v = Value::decode(value, encoding).map_err(|e| Failure(INPUT, format!("VALUE: {e}")))?;
    Ok((v, encoding))
}

/// `kad keygen`.
pub fn keygen(args: KeygenArgs) -> Result<(), Failure> {
    let public = public_path(&args.out);
    for path in [&args.out, &public] {
        if path.exists() {
            return Err(Failure(INPUT, format!("{} exists; not overwriting a key", path.display())));
        }
    }
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let kp = Keypair::from_secret(&secret);
    let public_hex = kp.public_key().to_string();
    write_secret(&args.out, &hex::encode(secret))
        .map_err(|e| Failure(FAILURE, format!("cannot write {}: {e}", args.out.display())))?;
    std::fs::write(&public, format!("{public_hex}\n"))
        .map_err(|e| Failure(FAILURE, format!("cannot write {}: {e}", public.display())))?;
    println!("secret key written to {}", args.out.display());
    println!("public key written to {}", public.display());
    println!("public key: {public_hex}");
    Ok(())
}

/// `kad sign`: prints the body on stdout.
pub fn sign(args: SignArgs) -> Result<(), Failure> {
    let kp = read_keypair(&args.keyfile)?;
    let (value, encoding) = parse_value(&args.value, args.hex, args.base64)?;
    let signature = kp.sign(args.key.as_bytes(), args.seq, value.as_bytes());
    let body = json!({
        "data": args.value,
        "encoding": encoding,
        "persist_mode": "SECURED",
        "seq": args.seq,
        "authorization": {
            "pub_key": { "key": kp.public_key().to_string(), "exp_time": args.exp_time },
            "sign": signature.to_string(),
        },
    });
    println!("{body}");
    Ok(())
}

fn public_path(secret: &Path) -> PathBuf {
    let mut p = secret.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

#[cfg(unix)]
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(f, "{text}")
}

#[cfg(not(unix))]
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

/// The key pair in a secret key file.
pub fn read_keypair(path: &Path) -> Result<Keypair, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(INPUT, format!("cannot read {}: {e}", path.display())))?;
    Ok(Keypair::from_secret(&parse_hex::<32>(text.trim(), &path.display().to_string())?))
}

/// `N` bytes from hex.
fn parse_hex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], Failure> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Failure(INPUT, format!("{what} must be {} hex digits", N * 2)))
}
