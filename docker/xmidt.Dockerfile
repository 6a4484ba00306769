# Every service in one image: the static (musl) `xmidt` binary and the CA bundle, nothing else.
# Built by scripts/docker-build, whose context holds just those two. The bundle is the host's:
# every HTTP client (reqwest on rustls) refuses to start without root certificates, and webhooks
# and norns may be https.
FROM scratch
COPY xmidt /xmidt
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# No /etc/passwd: a numeric non-root user.
USER 65532:65532
ENTRYPOINT ["/xmidt"]
CMD ["--help"]
