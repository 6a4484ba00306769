//! `xmidt up`: the whole cloud in one process, on the embedded store. Each service runs exactly
//! as its own subcommand would, wired to the others over loopback: the same interfaces as in a
//! cluster, so the one-process and cluster paths are one code path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use clap::Args;
use tokio_util::sync::CancellationToken;
use xmidt_discovery::DiscoveryConfig;

use crate::config::{self, FileConfig};
use crate::sim;

#[derive(Args)]
pub struct UpArgs {
    /// The address every service listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where the embedded store keeps its file (webhooks, norns).
    #[arg(long, default_value = "./xmidt-data")]
    pub data: PathBuf,
    /// USER:PASS that API routes require (device connections are not asked).
    #[arg(long, env = "XMIDT_BASIC_AUTH")]
    pub basic_auth: Option<String>,
    /// A YAML file for everything else (sections per service); ports come from it too.
    #[arg(long, env = "XMIDT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also run one simulated device (mac:112233445566) that answers requests on its `config`
    /// service and sends an event every 5 s.
    #[arg(long)]
    pub demo: bool,
}

/// Where one process's services listen, as clients on this machine reach them.
pub struct Endpoints {
    pub caduceus: SocketAddr,
    pub talaria: SocketAddr,
    pub talaria_control: Option<SocketAddr>,
    pub scytale: SocketAddr,
    pub petasos: SocketAddr,
    pub mimisbrunnr: SocketAddr,
}

/// The configuration of every service for one process: addresses on `bind`, each service
/// pointed at the others, one store, one set of credentials.
pub fn wire(args: &UpArgs) -> Result<(FileConfig, Endpoints)> {
    let mut c = config::load(args.config.as_deref())?;
    // Services reach each other on loopback when bound to every interface.
    let local = if args.bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        args.bind
    };
    let bind = |a: SocketAddr| SocketAddr::new(args.bind, a.port());
    let reach = |a: SocketAddr| SocketAddr::new(local, a.port());

    c.talaria.address = bind(c.talaria.address);
    c.talaria.control_address = c.talaria.control_address.map(bind);
    c.petasos.address = bind(c.petasos.address);
    c.scytale.address = bind(c.scytale.address);
    c.caduceus.address = bind(c.caduceus.address);
    c.mimisbrunnr.address = bind(c.mimisbrunnr.address);
    let e = Endpoints {
        caduceus: reach(c.caduceus.address),
        talaria: reach(c.talaria.address),
        talaria_control: c.talaria.control_address.map(reach),
        scytale: reach(c.scytale.address),
        petasos: reach(c.petasos.address),
        mimisbrunnr: reach(c.mimisbrunnr.address),
    };

    let talaria = DiscoveryConfig {
        fixed: vec![format!("http://{}", e.talaria)],
        default_scheme: "http".into(),
        ..DiscoveryConfig::default()
    };
    c.petasos.discovery = talaria.clone();
    c.scytale.fanout.endpoints.clear();
    c.scytale.fanout.discovery = talaria;
    c.talaria.outbound.event_endpoints = [(
        "default".to_string(),
        vec![format!("http://{}/api/v4/notify", e.caduceus)],
    )]
    .into();

    // One embedded store for the webhooks and the norns; local webhook receivers are fine in
    // a local deployment.
    c.caduceus.data_dir = args.data.clone();
    c.caduceus.registration.allow_loopback = true;
    c.caduceus.registration.allow_ip_literals = true;
    c.caduceus.registration.allow_private_networks = true;
    // One local user sees every device's events unless the config names partners.
    if c.caduceus.registration.default_partner_ids.is_empty() {
        c.caduceus.registration.default_partner_ids = vec!["*".into()];
    }
    c.mimisbrunnr.data_dir = args.data.clone();
    let (hook, events) = (
        format!("http://{}/hook", e.caduceus),
        format!("http://{}/events", e.mimisbrunnr),
    );
    let registration = match c.mimisbrunnr.caduceus.take() {
        Some(mut r) => {
            r.url = hook;
            r.events_url = events;
            r
        }
        // Through serde, so every other field takes its documented default.
        None => serde_json::from_value(serde_json::json!({ "url": hook, "events_url": events }))
            .context("mimisbrunnr's caduceus registration")?,
    };
    c.mimisbrunnr.caduceus = Some(registration);

    if let Some(credentials) = &args.basic_auth {
        credentials
            .split_once(':')
            .context("--basic-auth (or XMIDT_BASIC_AUTH) is USER:PASS")?;
        let basic = vec![credentials.clone()];
        c.talaria.api_auth.basic = basic.clone();
        c.scytale.auth.basic = basic.clone();
        c.caduceus.api_auth.basic = basic.clone();
        c.mimisbrunnr.api_auth.basic = basic;
        // Services calling each other's APIs carry the same credentials.
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        c.scytale.fanout.authorization = Some(header.clone());
        c.talaria.outbound.authorization = Some(header);
        if let Some(registration) = &mut c.mimisbrunnr.caduceus {
            registration.basic = Some(credentials.clone());
        }
    }
    Ok((c, e))
}

/// What `xmidt up` prints once everything listens.
pub fn banner(e: &Endpoints, basic_auth: Option<&str>) -> String {
    let auth = basic_auth.map(|c| format!(" -u '{c}'")).unwrap_or_default();
    let control = e
        .talaria_control
        .map(|a| format!("\n  talaria control  http://{a}/api/v3/device/gate"))
        .unwrap_or_default();
    format!(
        "xmidt is up:
  petasos          http://{petasos}   devices connect here: ws://{petasos}/api/v2/device
  talaria          http://{talaria}{control}
  scytale          http://{scytale}   API: POST /api/v3/device
  caduceus         http://{caduceus}   webhooks: POST /hook, GET /hooks
  mimisbrunnr      http://{mimisbrunnr}   norns: POST /norns

Send a device a message:
  curl{auth} -s http://{scytale}/api/v3/device \\
    -H 'Content-Type: application/json' -H 'Accept: application/json' \\
    -d '{{\"msg_type\":3,\"source\":\"dns:me\",\"dest\":\"mac:112233445566/config\",\"transaction_uuid\":\"try-1\",\"payload\":\"eyJuYW1lcyI6WyJ4Il19\"}}'
or: xmidt send mac:112233445566 --scytale http://{scytale}{send_auth}

Ctrl-C stops everything.",
        petasos = e.petasos,
        talaria = e.talaria,
        scytale = e.scytale,
        caduceus = e.caduceus,
        mimisbrunnr = e.mimisbrunnr,
        send_auth = basic_auth.map(|c| format!(" --basic-auth '{c}'")).unwrap_or_default(),
    )
}

/// `--demo`'s device: mac:112233445566, a `demo-telemetry` event (qos 25) every 5 s.
fn demo_device(petasos: SocketAddr) -> sim::Spec {
    sim::Spec {
        mac: "11:22:33:44:55:66".into(),
        url: format!("http://{petasos}"),
        event_type: "demo-telemetry".into(),
        event_every: std::time::Duration::from_secs(5),
        qos: 25,
        hw_model: "xmidt-demo".into(),
        hw_serial_number: "DEMO0001".into(),
        ping_timeout_secs: None,
        backoff_max: None,
    }
}

/// Runs every service until `shutdown`; the first one that fails stops the others.
pub async fn run(args: UpArgs, shutdown: CancellationToken) -> Result<()> {
    let (c, e) = wire(&args)?;
    let stop = shutdown.clone();
    let services = async move {
        tokio::try_join!(
            async {
                xmidt_caduceus::run(c.caduceus, stop.clone())
                    .await
                    .context("caduceus")
            },
            async {
                xmidt_talaria::run(c.talaria, stop.clone())
                    .await
                    .context("talaria")
            },
            async {
                xmidt_petasos::run(c.petasos, stop.clone())
                    .await
                    .context("petasos")
            },
            async {
                xmidt_scytale::run(c.scytale, stop.clone())
                    .await
                    .context("scytale")
            },
            async {
                xmidt_mimisbrunnr::run(c.mimisbrunnr, stop.clone())
                    .await
                    .context("mimisbrunnr")
            },
        )
    };
    let stopped = shutdown.clone();
    let announce = async {
        // Every service binds within moments; say where they are once they all answer.
        for _ in 0..200 {
            let mut up = true;
            for a in [e.caduceus, e.talaria, e.scytale, e.petasos, e.mimisbrunnr] {
                up &= tokio::net::TcpStream::connect(a).await.is_ok();
            }
            if up {
                if args.demo {
                    if let Err(err) = sim::start(demo_device(e.petasos), stopped.clone()).await {
                        eprintln!("xmidt: {err:#}");
                    }
                }
                println!("{}", banner(&e, args.basic_auth.as_deref()));
                if args.demo {
                    println!("The demo device mac:112233445566 connects through petasos; try the request above.");
                }
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    // A service that fails to start ends the wait for the others.
    let printed = async {
        tokio::select! {
            () = announce => {}
            () = stopped.cancelled() => {}
        }
    };
    let (result, ()) = tokio::join!(
        async {
            let r = services.await;
            // One service failing (a port in use) takes the rest down with it.
            shutdown.cancel();
            r
        },
        printed
    );
    result.map(|_| ())
}
