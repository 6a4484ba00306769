//! SQS `SendMessage` over the AWS JSON protocol, signed with SigV4.
//!
//! The `aws-sigv4` crate does the signing: it is what the AWS SDK itself uses, and costs a few
//! seconds of compile time, where `aws-sdk-sqs` would bring the SDK's whole runtime for one
//! call. The request is small enough to build by hand.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::norn::SqsTarget;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const TARGET: &str = "AmazonSQS.SendMessage";

/// A signed `SendMessage` request for `body`, ready to send.
pub(crate) fn send_message(
    client: &reqwest::Client,
    target: &SqsTarget,
    body: &str,
    now: SystemTime,
) -> Result<reqwest::RequestBuilder, String> {
    let payload = serde_json::json!({
        "QueueUrl": target.queue_url.as_str(),
        "MessageBody": body,
        "DelaySeconds": target.delay_seconds,
    })
    .to_string();
    // JSON-protocol calls go to the service endpoint's root; the queue is named in the body.
    let mut endpoint = target.queue_url.clone();
    endpoint.set_path("/");
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
    let signed = signed_headers(target, endpoint.as_str(), &headers, payload.as_bytes(), now)?;
    let mut request = client.post(endpoint.as_str()).body(payload);
    for (name, value) in headers.iter().copied().chain(
        signed
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    ) {
        request = request.header(name, value);
    }
    Ok(request)
}

/// The headers SigV4 adds (`authorization`, `x-amz-date`) for a POST of `body` to `url`.
fn signed_headers(
    target: &SqsTarget,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = Credentials::new(
        &target.access_key,
        &target.secret_key,
        None,
        None,
        "mimisbrunnr-norn",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("sqs")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}
