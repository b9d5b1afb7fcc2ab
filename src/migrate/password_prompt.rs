//! Asking for a password on the terminal without showing it (echo off while it is typed), so it
//! appears neither on screen nor in the shell history or the process list as an argument would.

use std::io::{BufRead, Write};

/// Prints `prompt` on standard error and reads one line from standard input. When standard
/// input is a terminal, what is typed is not echoed.
pub fn ask(prompt: &str) -> Result<String, String> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    let _ = writeln!(stderr);
    match read {
        Ok(0) => Err("no password given (set PDS_ACCOUNT_PASSWORD or type it)".to_owned()),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_owned()),
        Err(e) => Err(format!("reading the password: {e}")),
    }
}

/// Terminal echo turned off until dropped (nothing, when standard input is no terminal).
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    #[cfg(unix)]
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own; failures (not a terminal)
        // are reported by the return value and leave the terminal as it was.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            if libc::isatty(libc::STDIN_FILENO) != 1
                || libc::tcgetattr(libc::STDIN_FILENO, &mut termios) != 0
            {
                return EchoOff { saved: None };
            }
            let saved = termios;
            termios.c_lflag &= !libc::ECHO;
            termios.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &termios) != 0 {
                return EchoOff { saved: None };
            }
            EchoOff { saved: Some(saved) }
        }
    }

    #[cfg(not(unix))]
    fn new() -> EchoOff {
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
