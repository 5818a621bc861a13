//! `hop TARGET [-- CMD…]`: until the SSH engine lands, show the route that would be taken and
//! fail honestly instead of pretending to connect.

use crate::error::HopError;
use crate::settings::Settings;

pub async fn run(settings: &Settings, target: &str, remote_command: &[String]) -> anyhow::Result<u8> {
    let (_, instance, route) = super::target_route(settings, target).await?;
    eprint!("{}", super::route::explain(settings, &instance, &route));
    let what = if remote_command.is_empty() {
        "open a shell".to_string()
    } else {
        format!("run {:?}", remote_command.join(" "))
    };
    Err(HopError::NotBuilt { message: format!("connecting is not built yet: cannot {what} on {target}") }.into())
}
