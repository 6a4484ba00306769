//! `xmidt wrp …`: converting WRP messages between their three forms.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue};
use wrp_nostd::{http as wrp_http, validate, OwnedMessage};

/// The most header lines the header form may have.
const MAX_HEADERS: usize = 1024;

#[derive(Subcommand)]
pub enum WrpCommand {
    /// Read one message from stdin in one form and write it to stdout in another.
    ///
    /// The http form is header lines (`Name: value`), a blank line, then the body (the payload).
    Convert {
        /// The form of the input.
        #[arg(long, value_enum)]
        from: Form,
        /// The form of the output.
        #[arg(long, value_enum)]
        to: Form,
        /// Also check the message against the per-type field rules (wrp-go v5's validator).
        #[arg(long)]
        validate: bool,
        /// The largest input accepted, in bytes; bigger input is refused, not buffered.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        max_bytes: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Form {
    Msgpack,
    Json,
    Http,
}

pub fn run(command: WrpCommand) -> Result<()> {
    match command {
        WrpCommand::Convert {
            from,
            to,
            validate: check,
            max_bytes,
        } => {
            let mut input = Vec::new();
            let n = std::io::stdin()
                .take(max_bytes.saturating_add(1))
                .read_to_end(&mut input)
                .context("reading stdin")?;
            if n as u64 > max_bytes {
                bail!("input is larger than {max_bytes} bytes");
            }
            let message = parse(from, &input)?;
            if check {
                validate(&message.as_message()).context("invalid message")?;
            }
            let output = render(to, &message)?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&output)
                .and_then(|()| stdout.flush())
                .context("writing stdout")
        }
    }
}

fn parse(form: Form, input: &[u8]) -> Result<OwnedMessage> {
    Ok(match form {
        Form::Msgpack => OwnedMessage::decode(input).context("invalid msgpack WRP")?,
        Form::Json => OwnedMessage::from_json(input).context("invalid JSON WRP")?,
        Form::Http => {
            let (headers, body) = parse_header_form(input).context("invalid http-form WRP")?;
            wrp_http::from_headers(&headers, body).context("invalid http-form WRP")?
        }
    })
}

fn render(form: Form, message: &OwnedMessage) -> Result<Vec<u8>> {
    Ok(match form {
        Form::Msgpack => message.to_msgpack().context("encoding msgpack")?,
        Form::Json => {
            let mut out = message.to_json();
            out.push(b'\n');
            out
        }
        Form::Http => {
            let mut out = Vec::new();
            for (name, value) in wrp_http::to_header_pairs(&message.as_message()) {
                if value.bytes().any(|b| b.is_ascii_control()) {
                    bail!("{name} holds control characters, which a header cannot carry");
                }
                out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
            }
            out.push(b'\n');
            out.extend_from_slice(&message.payload);
            out
        }
    })
}

/// Splits `Name: value` lines, the blank line that ends them, and the body.
fn parse_header_form(input: &[u8]) -> Result<(HeaderMap, &[u8])> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (used, parsed) = match httparse::parse_headers(input, &mut lines)? {
        httparse::Status::Complete(done) => done,
        httparse::Status::Partial => bail!("the header lines must end with a blank line"),
    };
    let mut headers = HeaderMap::new();
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .with_context(|| format!("bad header name {:?}", h.name))?;
        let value = HeaderValue::from_bytes(h.value)
            .with_context(|| format!("bad value for {}", h.name))?;
        headers.append(name, value);
    }
    Ok((headers, &input[used..]))
}
