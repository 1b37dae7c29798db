//! Passphrases: from the environment for scripts (documented as leaky), otherwise a no-echo
//! prompt on the terminal. Never from a command-line argument, which `ps` shows to everyone.

use std::io::IsTerminal;

use testimony_core::Error;
use zeroize::Zeroizing;

pub fn get(env: &str, prompt: &str, confirm: bool) -> Result<Zeroizing<String>, Error> {
    if let Ok(p) = std::env::var(env) {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(format!(
            "no passphrase: run in a terminal, or set {env} (environment variables can leak; see README)"
        )));
    }
    let first = Zeroizing::new(rpassword::prompt_password(prompt)?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if *again != *first {
            return Err(Error::invalid("the two passphrases differ".into()));
        }
    }
    Ok(first)
}
