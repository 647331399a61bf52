//! The real openclaw TUI (`openclaw-ref tui`, unchanged) in a tmux pane: type into it, read the
//! screen. tmux is Debian's package (`.ci/run` installs it; installed here when missing). Every
//! TUI gets a tmux server of its own (private socket dir), killed on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::openclaw::{ensure_installed, openclaw_ref_dir, openclaw_ref_script};
use crate::process::{TempDir, base_env, ensure_debian_package, run_command};

pub struct Tui {
    /// HOME of the TUI and the tmux socket dir.
    home: TempDir,
    tmux: PathBuf,
}

const SESSION: &str = "tui";

impl Tui {
    /// Start `openclaw tui --url <url> --token <token>` in a 120x40 pane.
    pub fn start(url: &str, token: &str) -> Tui {
        ensure_installed();
        let script = openclaw_ref_script();
        // `exec` so the pane's process is the TUI.
        Tui::pane(&format!("exec '{}' tui --url '{url}' --token '{token}'", script.display()))
    }

    /// Any shell command line in a 120x40 pane of its own tmux server; a pane left open after
    /// the command exits keeps its last screen readable.
    pub fn pane(line: &str) -> Tui {
        ensure_debian_package("/usr/bin/tmux", "tmux");
        let home = TempDir::new("openclaw-tui");
        let tui = Tui { tmux: PathBuf::from("/usr/bin/tmux"), home };
        let out =
            run_command(tui.command().args(["new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", line]), Duration::from_secs(30));
        assert!(out.success(), "tmux new-session: {out:?}");
        let _ = run_command(tui.command().args(["set-option", "-t", SESSION, "remain-on-exit", "on"]), Duration::from_secs(10));
        tui
    }

    /// Press keys by tmux's names (`Down`, `Enter`, `Right`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = run_command(self.command().args(["send-keys", "-t", SESSION, k]), Duration::from_secs(10));
            assert!(out.success(), "tmux send-keys {k}: {out:?}");
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.tmux);
        base_env(&mut cmd, self.home.path());
        cmd.env("OPENCLAW_REF_DIR", openclaw_ref_dir()).env("TMUX_TMPDIR", self.home.path()).env("TERM", "xterm-256color");
        cmd
    }

    /// The visible screen, as text.
    pub fn screen(&self) -> String {
        let out = run_command(self.command().args(["capture-pane", "-p", "-t", SESSION]), Duration::from_secs(10));
        out.stdout
    }

    /// Type `text` and press Enter.
    pub fn send_line(&self, text: &str) {
        let out = run_command(self.command().args(["send-keys", "-t", SESSION, "-l", text]), Duration::from_secs(10));
        assert!(out.success(), "tmux send-keys: {out:?}");
        let out = run_command(self.command().args(["send-keys", "-t", SESSION, "Enter"]), Duration::from_secs(10));
        assert!(out.success(), "tmux send-keys Enter: {out:?}");
    }

    /// Poll the screen until `done` holds; `Err(last screen)` after `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                return Err(screen);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = run_command(self.command().arg("kill-server"), Duration::from_secs(10));
    }
}
