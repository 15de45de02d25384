//! `otlp-sink ADDR`: an OTLP/gRPC trace receiver that counts the spans it is sent and drops
//! them, for `bench/tracing` (the cost of exporting, without a collector's own cost).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let count: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.spans
            .fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves on `addr` until Ctrl-C or SIGTERM, then prints how many spans it received.
pub async fn run(addr: &str) -> anyhow::Result<()> {
    let sink = Sink::default();
    let spans = sink.spans.clone();
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        .serve_with_shutdown(
            addr.parse()?,
            platform::shutdown::on_signal().cancelled_owned(),
        )
        .await?;
    println!("{}", spans.load(Ordering::Relaxed));
    Ok(())
}
