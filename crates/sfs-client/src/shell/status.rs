//! The commands about the session itself: `status` and `help`.

use sfs_net::{PathState, Transport};
use sfs_proto::control::{Command as Wire, Reply};

use super::{human_bytes, Shell};
use crate::command::COMMANDS;
use crate::connection::ClientError;
use crate::display::escape;

impl<T: Transport> Shell<T> {
    /// `status`: the association's paths, streams, TLS and bytes moved, and the
    /// server's view of the session.
    pub(crate) async fn status(&mut self) -> Result<(), ClientError> {
        let server = self.single(Wire::Status).await?;
        let paths = self.connection.paths();
        let streams = self.connection.streams();
        let (sent, received) = self.connection.bytes_moved();
        let mut text = Vec::new();
        if paths.is_empty() {
            text.push("paths: none reported by this transport".to_owned());
        } else {
            text.push(format!("paths: {} peer address(es)", paths.len()));
            for path in &paths {
                let rtt = if path.srtt.is_zero() {
                    "-".to_owned()
                } else {
                    format!("{} ms", path.srtt.as_millis())
                };
                text.push(format!(
                    "  {:<28} {:<20} rtt {:<8}{}",
                    path.addr.to_string(),
                    path_state_text(path.state),
                    rtt,
                    if path.primary { " primary" } else { "" }
                ));
            }
        }
        self.association_lines(&mut text);
        text.push(format!(
            "streams: {} outbound, {} inbound (stream 0 control, {} for data)",
            streams.outbound,
            streams.inbound,
            streams
                .outbound
                .saturating_sub(1)
                .min(streams.inbound.saturating_sub(1))
        ));
        match self.connection.tls() {
            Some((version, suite)) => text.push(format!("tls: {version}, {suite}")),
            None => text.push("tls: not negotiated".to_owned()),
        }
        text.push(format!(
            "bytes moved: {} sent, {} received",
            human_bytes(sent),
            human_bytes(received)
        ));
        if let Reply::ServerStatus {
            user,
            cwd,
            admin,
            transfers,
        } = server
        {
            text.push(format!(
                "server: logged in as {}{}, folder {}, {} transfer(s) open",
                escape(&user),
                if admin { " (admin)" } else { "" },
                escape(&cwd),
                transfers
            ));
        }
        for line in text {
            self.line(line)?;
        }
        Ok(())
    }

    /// `status`'s lines about the associations: how many, and each one's
    /// paths and their states (the first one's in detail above).
    fn association_lines(&self, text: &mut Vec<String>) {
        let list = self.connection.associations();
        let (setting, limit) = self.connection.association_setting();
        text.push(format!(
            "associations: {} open (setting {setting}, the server allows {limit})",
            list.len()
        ));
        for association in &list {
            let role = if association.index == 0 {
                "control and data"
            } else {
                "data"
            };
            let paths = association
                .paths
                .iter()
                .map(|path| {
                    let primary = if path.primary { ", primary" } else { "" };
                    format!("{} {}{primary}", path.addr, path_state_text(path.state))
                })
                .collect::<Vec<_>>();
            let paths = if paths.is_empty() {
                "no paths reported".to_owned()
            } else {
                paths.join("; ")
            };
            text.push(format!("  #{} {role}: {paths}", association.index));
        }
    }

    /// `help [COMMAND]`.
    pub(crate) async fn help(&mut self, topic: Option<String>) -> Result<(), ClientError> {
        let lines = help_lines(topic.as_deref()).map_err(ClientError::Usage)?;
        for line in lines {
            self.line(line)?;
        }
        Ok(())
    }
}

fn path_state_text(state: PathState) -> String {
    match state {
        PathState::Active => "active".into(),
        PathState::Inactive => "inactive".into(),
        PathState::PotentiallyFailed => "potentially-failed".into(),
        PathState::Unconfirmed => "unconfirmed".into(),
        PathState::Unknown(raw) => format!("unknown({raw})"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The text of `help [COMMAND]`, one line each; it needs no connection (the
/// binary prints it for `sfs help` without a server).
///
/// # Errors
///
/// The line to show when `topic` names no command.
pub fn help_lines(topic: Option<&str>) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    if let Some(topic) = topic {
        let spec = crate::command::find_command(topic)
            .ok_or_else(|| format!("no command `{}` (type `help` for the list)", escape(topic)))?;
        let names = spec.names.join(", ");
        lines.push(format!("{}: {}", spec.usage, spec.summary));
        lines.push(format!("  names: {names} (any case)"));
        for flag in spec.flags {
            let value = flag.value.map(|v| format!(" {v}")).unwrap_or_default();
            lines.push(format!("  -{}{value}  {}", flag.letter, flag.help));
        }
        lines.push(format!("  example: {}", spec.example));
        return Ok(lines);
    }
    lines.push("Commands (any case; the original names LIST, RETR, STOR, ... work too):".into());
    for spec in COMMANDS {
        lines.push(format!("  {:<30} {}", spec.usage, spec.summary));
        lines.push(format!("  {:<30}   e.g. {}", "", spec.example));
    }
    Ok(lines)
}
