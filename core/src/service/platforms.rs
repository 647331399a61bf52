//! The non-systemd supervisor definitions: a launchd property list (macOS) and a Task Scheduler
//! task (Windows).
//!
//! Why these exist: the gateway's runbook (§9) has it supervised by systemd on Linux, launchd on
//! macOS and a scheduled task on Windows — the reference gateway installs the same three. Only
//! systemd is exercised on Linux hosts (`unit`); the other two are generated here and validated as
//! files (parsed back by a plist and an XML parser in the tests), so `install` on those hosts
//! writes a definition whose shape is already pinned. Pure functions: the shell writes the file
//! and runs `launchctl bootstrap` / `schtasks /Create /XML <file> /TN <name>`.

use super::ServiceSpec;

/// `ai.clawgate.gateway`, or `ai.clawgate.<profile>` (lowercased, as `service_name` does): the
/// launchd job label, also the plist's file stem under `~/Library/LaunchAgents` or
/// `/Library/LaunchDaemons`.
pub fn launchd_label(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("ai.clawgate.{}", p.to_ascii_lowercase()),
        None => "ai.clawgate.gateway".into(),
    }
}

/// `<dir>/logs/gateway.launchd.log`: where launchd sends the gateway's stdout and stderr (the
/// gateway's own file log is separate; this catches what is printed before it is open).
fn launchd_log_path(state_dir: &str) -> String {
    format!("{}/logs/gateway.launchd.log", state_dir.trim_end_matches('/'))
}

/// Appends `<key>k</key><string>v</string>` at one tab of indentation per `depth`.
fn plist_string(out: &mut String, depth: usize, key: &str, value: &str) {
    plist_key(out, depth, key);
    plist_line(out, depth, &format!("<string>{}</string>", crate::markup::escape(value)));
}

fn plist_key(out: &mut String, depth: usize, key: &str) {
    plist_line(out, depth, &format!("<key>{}</key>", crate::markup::escape(key)));
}

fn plist_line(out: &mut String, depth: usize, line: &str) {
    for _ in 0..depth {
        out.push('\t');
    }
    out.push_str(line);
    out.push('\n');
}

/// The launchd job for `spec`: a LaunchAgent (user) or, with `spec.system`, a LaunchDaemon that
/// runs as `spec.user` when one is given.
///
/// launchd restarts it when it exits unsuccessfully (a crash, a signal) and leaves it down after a
/// clean exit (`gateway stop`, a supervised shutdown).
pub fn launchd_plist(spec: &ServiceSpec) -> String {
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
        "<plist version=\"1.0\">\n",
        "<dict>\n",
    ));
    plist_string(&mut out, 1, "Label", &launchd_label(spec.profile.as_deref()));

    plist_key(&mut out, 1, "ProgramArguments");
    plist_line(&mut out, 1, "<array>");
    for arg in std::iter::once(spec.exe.clone()).chain(spec.run_args()) {
        plist_line(&mut out, 2, &format!("<string>{}</string>", crate::markup::escape(&arg)));
    }
    plist_line(&mut out, 1, "</array>");

    plist_key(&mut out, 1, "EnvironmentVariables");
    plist_line(&mut out, 1, "<dict>");
    for (name, value) in spec.environment() {
        plist_string(&mut out, 2, name, &value);
    }
    plist_line(&mut out, 1, "</dict>");

    if let (true, Some(user)) = (spec.system, &spec.user) {
        plist_string(&mut out, 1, "UserName", user);
    }

    plist_key(&mut out, 1, "RunAtLoad");
    plist_line(&mut out, 1, "<true/>");
    // Restart on an unsuccessful exit only. launchd has no RestartPreventExitStatus: a config
    // error (exit 78, EX_CONFIG) is restarted too, and ThrottleInterval is what paces those
    // retries instead of letting the job spin.
    plist_key(&mut out, 1, "KeepAlive");
    plist_line(&mut out, 1, "<dict>");
    plist_key(&mut out, 2, "SuccessfulExit");
    plist_line(&mut out, 2, "<false/>");
    plist_line(&mut out, 1, "</dict>");
    plist_key(&mut out, 1, "ThrottleInterval");
    plist_line(&mut out, 1, "<integer>5</integer>");
    // Seconds between SIGTERM and SIGKILL: room for the supervised drain.
    plist_key(&mut out, 1, "ExitTimeOut");
    plist_line(&mut out, 1, "<integer>30</integer>");

    plist_string(&mut out, 1, "WorkingDirectory", &spec.state_dir);
    let log = launchd_log_path(&spec.state_dir);
    plist_string(&mut out, 1, "StandardOutPath", &log);
    plist_string(&mut out, 1, "StandardErrorPath", &log);

    out.push_str("</dict>\n</plist>\n");
    out
}

/// `clawgate Gateway`, or `clawgate Gateway (<profile>)`: the task's name (`schtasks /TN`).
pub fn windows_task_name(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("clawgate Gateway ({p})"),
        None => "clawgate Gateway".into(),
    }
}

/// One argument on a Windows command line: double-quoted when it holds a space.
fn windows_arg(arg: &str) -> String {
    if arg.contains(' ') { format!("\"{arg}\"") } else { arg.to_owned() }
}

/// The `cmd.exe` arguments that start the gateway: Task Scheduler has no environment block, so
/// the paths and the profile are `set` in the same `cmd` before the binary runs.
///
/// Each `set "NAME=value"` is quoted, so `&`, `<`, `>` and spaces in a path stay literal. A
/// Windows path cannot hold `"`; `%NAME%` in a path would still be expanded by `cmd` if `NAME`
/// is a defined variable (there is no escape for it inside quotes on a command line).
fn windows_cmd_arguments(spec: &ServiceSpec) -> String {
    let mut parts: Vec<String> = vec!["/d".into(), "/c".into()];
    // HOME is not a Windows variable: the task's account has its own USERPROFILE.
    for (name, value) in spec.environment().into_iter().filter(|(name, _)| *name != "HOME") {
        parts.push(format!("set \"{name}={value}\""));
        parts.push("&&".into());
    }
    parts.push(format!("\"{}\"", spec.exe));
    parts.extend(spec.run_args().iter().map(|a| windows_arg(a)));
    parts.join(" ")
}

/// The Task Scheduler 1.2 definition for `spec`, importable with
/// `schtasks /Create /XML <file> /TN <windows_task_name>`.
///
/// A user task starts at logon with the user's own (least-privilege) token; a system task starts
/// at boot as SYSTEM, or as `spec.user` (a Password logon: `schtasks` asks for it with `/RP`).
/// Task Scheduler restarts a failed run every minute, up to ten times.
pub fn windows_task_xml(spec: &ServiceSpec) -> String {
    let e = crate::markup::escape;
    let profile_note = match &spec.profile {
        Some(p) => format!(" (profile {p})"),
        None => String::new(),
    };
    let description = format!("clawgate gateway{profile_note} on port {}", spec.port);

    let trigger = if spec.system {
        "    <BootTrigger>\n      <Enabled>true</Enabled>\n    </BootTrigger>\n".to_owned()
    } else {
        // Without a UserId the trigger fires at anyone's logon, which only an administrator may
        // register; with one it is the user's own task.
        let user = match &spec.user {
            Some(u) => format!("      <UserId>{}</UserId>\n", e(u)),
            None => String::new(),
        };
        format!("    <LogonTrigger>\n      <Enabled>true</Enabled>\n{user}    </LogonTrigger>\n")
    };

    let principal = match (spec.system, &spec.user) {
        (true, Some(u)) => format!("      <UserId>{}</UserId>\n      <LogonType>Password</LogonType>\n", e(u)),
        // S-1-5-18 is LocalSystem.
        (true, None) => "      <UserId>S-1-5-18</UserId>\n      <LogonType>ServiceAccount</LogonType>\n".to_owned(),
        (false, Some(u)) => format!("      <UserId>{}</UserId>\n      <LogonType>InteractiveToken</LogonType>\n", e(u)),
        (false, None) => "      <LogonType>InteractiveToken</LogonType>\n".to_owned(),
    };

    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<Task version=\"1.2\" xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\n",
            "  <RegistrationInfo>\n",
            "    <Description>{description}</Description>\n",
            "  </RegistrationInfo>\n",
            "  <Triggers>\n",
            "{trigger}",
            "  </Triggers>\n",
            "  <Principals>\n",
            "    <Principal id=\"Author\">\n",
            "{principal}",
            "      <RunLevel>LeastPrivilege</RunLevel>\n",
            "    </Principal>\n",
            "  </Principals>\n",
            "  <Settings>\n",
            "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n",
            "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n",
            "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n",
            "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>\n",
            "    <RestartOnFailure>\n",
            "      <Interval>PT1M</Interval>\n",
            "      <Count>10</Count>\n",
            "    </RestartOnFailure>\n",
            "    <Enabled>true</Enabled>\n",
            "    <Hidden>false</Hidden>\n",
            "  </Settings>\n",
            "  <Actions Context=\"Author\">\n",
            "    <Exec>\n",
            "      <Command>cmd.exe</Command>\n",
            "      <Arguments>{arguments}</Arguments>\n",
            "      <WorkingDirectory>{workdir}</WorkingDirectory>\n",
            "    </Exec>\n",
            "  </Actions>\n",
            "</Task>\n",
        ),
        description = e(&description),
        trigger = trigger,
        principal = principal,
        arguments = e(&windows_cmd_arguments(spec)),
        workdir = e(&spec.state_dir),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK_NS: &str = "http://schemas.microsoft.com/windows/2004/02/mit/task";
    const HOSTILE: &str = "/tmp/a&b<c>\"d'/x.json";

    fn spec() -> ServiceSpec {
        ServiceSpec {
            profile: None,
            exe: "/usr/local/bin/clawgate".into(),
            port: 18789,
            config_path: "/home/ann/.openclaw/openclaw.json".into(),
            state_dir: "/home/ann/.openclaw".into(),
            system: false,
            user: None,
            home: "/home/ann".into(),
        }
    }

    fn plist_dict(xml: &str) -> plist::Dictionary {
        let value = plist::Value::from_reader_xml(xml.as_bytes()).expect("plist parses");
        value.into_dictionary().expect("top-level dict")
    }

    fn string<'a>(d: &'a plist::Dictionary, key: &str) -> &'a str {
        d.get(key).and_then(plist::Value::as_string).unwrap_or_else(|| panic!("string {key}"))
    }

    fn env_of(d: &plist::Dictionary) -> &plist::Dictionary {
        d.get("EnvironmentVariables").and_then(plist::Value::as_dictionary).expect("EnvironmentVariables")
    }

    fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
        node.children().find(|n| n.has_tag_name((TASK_NS, name))).unwrap_or_else(|| panic!("<{name}> under <{}>", node.tag_name().name()))
    }

    fn text_at<'a>(doc: &'a roxmltree::Document<'a>, path: &[&str]) -> &'a str {
        let mut node = doc.root_element();
        for name in path {
            node = child(node, name);
        }
        node.text().unwrap_or("")
    }

    #[test]
    fn markup_escape_covers_the_five_and_leaves_the_rest() {
        assert_eq!(crate::markup::escape("a&b<c>\"d'e"), "a&amp;b&lt;c&gt;&quot;d&#39;e");
        assert_eq!(crate::markup::escape("]]>"), "]]&gt;");
        assert_eq!(crate::markup::escape("&amp;"), "&amp;amp;");
        assert_eq!(crate::markup::escape("C:\\Program Files\\é"), "C:\\Program Files\\é");
        assert_eq!(crate::markup::escape(""), "");
    }

    #[test]
    fn names_carry_the_profile() {
        assert_eq!(launchd_label(None), "ai.clawgate.gateway");
        assert_eq!(launchd_label(Some("Work")), "ai.clawgate.work");
        assert_eq!(windows_task_name(None), "clawgate Gateway");
        assert_eq!(windows_task_name(Some("work")), "clawgate Gateway (work)");
    }

    #[test]
    fn plist_parses_with_the_job_fields() {
        let d = plist_dict(&launchd_plist(&spec()));
        assert_eq!(string(&d, "Label"), "ai.clawgate.gateway");
        let args: Vec<&str> = d
            .get("ProgramArguments")
            .and_then(plist::Value::as_array)
            .expect("ProgramArguments")
            .iter()
            .map(|v| v.as_string().expect("string arg"))
            .collect();
        assert_eq!(args, ["/usr/local/bin/clawgate", "run", "--supervised", "--port", "18789"]);

        let env = env_of(&d);
        assert_eq!(string(env, "HOME"), "/home/ann");
        assert_eq!(string(env, "OPENCLAW_STATE_DIR"), "/home/ann/.openclaw");
        assert_eq!(string(env, "OPENCLAW_CONFIG_PATH"), "/home/ann/.openclaw/openclaw.json");
        assert!(env.get("OPENCLAW_PROFILE").is_none());

        let keep_alive = d.get("KeepAlive").and_then(plist::Value::as_dictionary).expect("KeepAlive dict");
        assert_eq!(keep_alive.get("SuccessfulExit").and_then(plist::Value::as_boolean), Some(false));
        assert_eq!(keep_alive.len(), 1);
        assert_eq!(d.get("RunAtLoad").and_then(plist::Value::as_boolean), Some(true));
        assert_eq!(d.get("ThrottleInterval").and_then(plist::Value::as_signed_integer), Some(5));
        assert_eq!(d.get("ExitTimeOut").and_then(plist::Value::as_signed_integer), Some(30));
        assert_eq!(string(&d, "WorkingDirectory"), "/home/ann/.openclaw");
        assert_eq!(string(&d, "StandardOutPath"), "/home/ann/.openclaw/logs/gateway.launchd.log");
        assert_eq!(string(&d, "StandardErrorPath"), "/home/ann/.openclaw/logs/gateway.launchd.log");
        assert!(d.get("UserName").is_none());
    }

    #[test]
    fn plist_profile_and_system_user() {
        let mut s = spec();
        s.profile = Some("work".into());
        s.system = true;
        s.user = Some("_clawgate".into());
        let d = plist_dict(&launchd_plist(&s));
        assert_eq!(string(&d, "Label"), "ai.clawgate.work");
        assert_eq!(string(env_of(&d), "OPENCLAW_PROFILE"), "work");
        assert_eq!(string(&d, "UserName"), "_clawgate");

        // A user agent never names a user, even when one is recorded.
        s.system = false;
        assert!(plist_dict(&launchd_plist(&s)).get("UserName").is_none());
        // Nor does a daemon without one (it runs as root).
        s.system = true;
        s.user = None;
        assert!(plist_dict(&launchd_plist(&s)).get("UserName").is_none());
    }

    #[test]
    fn plist_round_trips_hostile_values() {
        let mut s = spec();
        s.config_path = HOSTILE.into();
        s.state_dir = "/srv/]]>&<x>/state/".into();
        s.exe = "/opt/it's \"here\"/clawgate".into();
        s.system = true;
        s.user = Some("a&<b>".into());
        let xml = launchd_plist(&s);
        assert!(!xml.contains(HOSTILE), "raw value leaked into the XML");
        let d = plist_dict(&xml);
        let env = env_of(&d);
        assert_eq!(string(env, "OPENCLAW_CONFIG_PATH"), HOSTILE);
        assert_eq!(string(env, "OPENCLAW_STATE_DIR"), "/srv/]]>&<x>/state/");
        assert_eq!(string(&d, "WorkingDirectory"), "/srv/]]>&<x>/state/");
        assert_eq!(string(&d, "StandardOutPath"), "/srv/]]>&<x>/state/logs/gateway.launchd.log");
        assert_eq!(string(&d, "UserName"), "a&<b>");
        let first = d.get("ProgramArguments").and_then(plist::Value::as_array).and_then(|a| a.first()).and_then(plist::Value::as_string);
        assert_eq!(first, Some("/opt/it's \"here\"/clawgate"));
    }

    fn windows_spec() -> ServiceSpec {
        ServiceSpec {
            profile: None,
            exe: "C:\\Program Files\\clawgate\\clawgate.exe".into(),
            port: 18789,
            config_path: "C:\\Users\\ann\\.openclaw\\openclaw.json".into(),
            state_dir: "C:\\Users\\ann\\.openclaw".into(),
            system: false,
            user: None,
            home: "C:\\Users\\ann".into(),
        }
    }

    #[test]
    fn task_user_at_logon() {
        let xml = windows_task_xml(&windows_spec());
        let doc = roxmltree::Document::parse(&xml).expect("task XML parses");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Task");
        assert_eq!(root.tag_name().namespace(), Some(TASK_NS));
        assert_eq!(root.attribute("version"), Some("1.2"));

        let triggers = child(root, "Triggers");
        let kinds: Vec<&str> = triggers.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        assert_eq!(kinds, ["LogonTrigger"]);

        assert_eq!(text_at(&doc, &["Principals", "Principal", "LogonType"]), "InteractiveToken");
        assert_eq!(text_at(&doc, &["Principals", "Principal", "RunLevel"]), "LeastPrivilege");
        assert!(child(child(root, "Principals"), "Principal").children().all(|n| !n.has_tag_name((TASK_NS, "UserId"))));

        assert_eq!(text_at(&doc, &["Settings", "MultipleInstancesPolicy"]), "IgnoreNew");
        assert_eq!(text_at(&doc, &["Settings", "ExecutionTimeLimit"]), "PT0S");
        assert_eq!(text_at(&doc, &["Settings", "RestartOnFailure", "Interval"]), "PT1M");
        assert_eq!(text_at(&doc, &["Settings", "RestartOnFailure", "Count"]), "10");
        assert_eq!(child(root, "Actions").attribute("Context"), Some("Author"));
        assert_eq!(text_at(&doc, &["Actions", "Exec", "Command"]), "cmd.exe");
        assert_eq!(
            text_at(&doc, &["Actions", "Exec", "Arguments"]),
            "/d /c set \"OPENCLAW_STATE_DIR=C:\\Users\\ann\\.openclaw\" && \
             set \"OPENCLAW_CONFIG_PATH=C:\\Users\\ann\\.openclaw\\openclaw.json\" && \
             \"C:\\Program Files\\clawgate\\clawgate.exe\" run --supervised --port 18789"
        );
        assert_eq!(text_at(&doc, &["Actions", "Exec", "WorkingDirectory"]), "C:\\Users\\ann\\.openclaw");
        assert_eq!(text_at(&doc, &["RegistrationInfo", "Description"]), "clawgate gateway on port 18789");
    }

    #[test]
    fn task_system_at_boot() {
        let mut s = windows_spec();
        s.system = true;
        let xml = windows_task_xml(&s);
        let doc = roxmltree::Document::parse(&xml).expect("task XML parses");
        let kinds: Vec<&str> =
            child(doc.root_element(), "Triggers").children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
        assert_eq!(kinds, ["BootTrigger"]);
        assert_eq!(text_at(&doc, &["Principals", "Principal", "UserId"]), "S-1-5-18");

        s.user = Some("CORP\\svc-claw".into());
        let xml = windows_task_xml(&s);
        let doc = roxmltree::Document::parse(&xml).expect("task XML parses");
        assert_eq!(text_at(&doc, &["Principals", "Principal", "UserId"]), "CORP\\svc-claw");
        assert_eq!(text_at(&doc, &["Principals", "Principal", "LogonType"]), "Password");
    }

    #[test]
    fn task_user_with_known_account_names_it() {
        let mut s = windows_spec();
        s.user = Some("ann".into());
        let xml = windows_task_xml(&s);
        let doc = roxmltree::Document::parse(&xml).expect("task XML parses");
        assert_eq!(text_at(&doc, &["Triggers", "LogonTrigger", "UserId"]), "ann");
        assert_eq!(text_at(&doc, &["Principals", "Principal", "UserId"]), "ann");
        assert_eq!(text_at(&doc, &["Principals", "Principal", "LogonType"]), "InteractiveToken");
    }

    #[test]
    fn task_profile_and_hostile_path_round_trip() {
        let mut s = windows_spec();
        s.profile = Some("work".into());
        s.config_path = HOSTILE.into();
        s.state_dir = "D:\\a&b <c>\\]]>".into();
        let xml = windows_task_xml(&s);
        assert!(!xml.contains(HOSTILE), "raw value leaked into the XML");
        let doc = roxmltree::Document::parse(&xml).expect("task XML parses");
        let args = text_at(&doc, &["Actions", "Exec", "Arguments"]);
        assert_eq!(
            args,
            format!(
                "/d /c set \"OPENCLAW_STATE_DIR=D:\\a&b <c>\\]]>\" && set \"OPENCLAW_CONFIG_PATH={HOSTILE}\" && \
                 set \"OPENCLAW_PROFILE=work\" && \"C:\\Program Files\\clawgate\\clawgate.exe\" run --supervised --port 18789"
            )
        );
        assert_eq!(text_at(&doc, &["Actions", "Exec", "WorkingDirectory"]), "D:\\a&b <c>\\]]>");
        assert_eq!(text_at(&doc, &["RegistrationInfo", "Description"]), "clawgate gateway (profile work) on port 18789");
    }

    #[test]
    fn windows_args_quote_spaces_only() {
        assert_eq!(windows_arg("--port"), "--port");
        assert_eq!(windows_arg("a b"), "\"a b\"");
    }
}
