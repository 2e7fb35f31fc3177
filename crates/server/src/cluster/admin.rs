//! `orbita admin`: administration from the shell, on the same database the server uses.
//!
//! `orbita admin create-user --email E --name N --role admin --password-file F` creates an
//! active account (the first administrator comes this way, or from ORBITA_ADMIN_EMAIL and
//! ORBITA_ADMIN_PASSWORD at the server's first start).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use orbita_coordinator::accounts::Role;
use orbita_coordinator::{Coordinator, Settings as CoordSettings};

/// Administration commands (they open the server's database directly).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The database (`sqlite://FILE`, `postgres://...`, `mysql://...`). Default: the SQLite
    /// file of `orbita serve` in --data-dir.
    #[arg(
        long,
        global = true,
        env = "ORBITA_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// `orbita serve`'s data directory (used when --database-url is not given).
    #[arg(
        long,
        global = true,
        env = "ORBITA_DATA_DIR",
        value_name = "DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,

    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: AdminCommand,
}

/// What `orbita admin` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an active account (no approval needed), e.g. the first administrator.
    CreateUser {
        /// Its e-mail (the login).
        #[arg(long)]
        email: String,
        /// The name shown to others. Default: the e-mail's local part.
        #[arg(long)]
        name: Option<String>,
        /// admin, supervisor or agent.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from this file ("-": standard input); its first line is used.
        /// Without it: ORBITA_ADMIN_PASSWORD.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

fn read_password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let text = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from standard input")?;
            s
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?,
        None => std::env::var("ORBITA_ADMIN_PASSWORD").map_err(|_| {
            anyhow!("give the password with --password-file FILE (or - for stdin) or ORBITA_ADMIN_PASSWORD")
        })?,
    };
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Runs `orbita admin ...`.
pub async fn run_admin(args: AdminArgs) -> anyhow::Result<()> {
    let database_url = match args.database_url.as_ref().filter(|u| !u.trim().is_empty()) {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    args.data_dir.display()
                )
            })?;
            format!("sqlite://{}", args.data_dir.join("orbita.db").display())
        }
    };
    let settings = CoordSettings {
        database_url: database_url.clone(),
        ..CoordSettings::default()
    };
    let coordinator = Coordinator::open(settings, orbita_coordinator::now_ms())
        .await
        .map_err(|e| anyhow!("cannot open the database: {e}"))?;
    match args.command {
        AdminCommand::CreateUser {
            email,
            name,
            role,
            password_file,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow!("--role {role:?}: {e}"))?;
            let password = read_password(password_file.as_ref())?;
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("").to_string());
            let user = coordinator
                .accounts()
                .create_user(&email, &name, &password, role, orbita_coordinator::now_ms())
                .await
                .map_err(|e| anyhow!("cannot create {email}: {e}"))?;
            println!(
                "created {} ({}), id {}, active",
                user.email,
                role_name(&user.role),
                user.id
            );
        }
    }
    coordinator.registry().close().await;
    Ok(())
}

fn role_name(role: &Role) -> String {
    format!("{role:?}").to_lowercase()
}
