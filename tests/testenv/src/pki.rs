//! Certificates and credentials, made once per state dir with the `openssl` CLI: a CA, one
//! serving certificate for 127.0.0.1 shared by every apiserver (all listen on loopback), a
//! service-account signing key and a token file.

use std::path::Path;
use std::process::Command;

use crate::{Error, Result};

pub struct Pki;

impl Pki {
    /// Creates the files in `dir` unless they exist; returns the admin token.
    pub fn ensure(dir: &Path) -> Result<String> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if !dir.join("serving.crt").exists() {
            openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=mck8s-testenv-ca",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            )?;
            openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "serving.key", "-out", "serving.csr", "-subj", "/CN=127.0.0.1"])?;
            std::fs::write(
                dir.join("serving.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
            )
            .map_err(|e| Error::io(dir, e))?;
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "serving.csr",
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "serving.crt.tmp",
                    "-days",
                    "3650",
                    "-extfile",
                    "serving.ext",
                ],
            )?;
            std::fs::rename(dir.join("serving.crt.tmp"), dir.join("serving.crt")).map_err(|e| Error::io(dir, e))?;
        }
        if !dir.join("sa.key").exists() {
            openssl(dir, &["genrsa", "-out", "sa.key", "2048"])?;
            openssl(dir, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
        }
        let tokens = dir.join("tokens.csv");
        if !tokens.exists() {
            let token = random_token()?;
            std::fs::write(&tokens, format!("{token},admin,admin,\"system:masters\"\n")).map_err(|e| Error::io(&tokens, e))?;
        }
        let text = std::fs::read_to_string(&tokens).map_err(|e| Error::io(&tokens, e))?;
        Ok(text.split(',').next().unwrap_or_default().to_string())
    }
}

fn random_token() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let path = Path::new("/dev/urandom");
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)).map_err(|e| Error::io(path, e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().map_err(|e| Error::Command { what: "openssl".into(), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Command { what: format!("openssl {}", args[0]), detail: String::from_utf8_lossy(&out.stderr).into() });
    }
    Ok(())
}
