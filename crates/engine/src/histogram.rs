//! Step histograms: HdrHistograms of microseconds with one set of bounds everywhere (so any
//! two can be added), their V2 + deflate + base64 encoding (the `histogram` field of a
//! StepResult), merging, and percentile summaries. Percentiles are only ever read from
//! histograms, never averaged.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use loadgen_model::result::LatencySummary;

/// Highest value the histograms track exactly: one hour, in microseconds (larger values are
/// clamped to it, never dropped).
pub const HIST_MAX_US: u64 = 3_600_000_000;
/// Significant digits of the step histograms (0.1 % resolution).
pub const HIST_SIGFIG: u8 = 3;
/// Significant digits of the per-second timeline histograms (1 %: enough for a plot, and small).
pub const SECOND_SIGFIG: u8 = 2;

/// Errors decoding or merging serialised histograms.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram {0}: not base64: {1}")]
    Base64(usize, base64::DecodeError),
    #[error("histogram {0}: not an HdrHistogram V2 encoding: {1}")]
    Decode(usize, hdrhistogram::serialization::DeserializeError),
    #[error("histogram {0}: cannot be added: {1}")]
    Add(usize, hdrhistogram::AdditionError),
    #[error("cannot serialise histogram: {0}")]
    Encode(String),
}

/// A new step histogram (µs, 1 µs to 1 h, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGFIG).expect("static histogram bounds")
}

/// A new per-second histogram (µs, the step bounds at [`SECOND_SIGFIG`]).
pub fn new_second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, SECOND_SIGFIG).expect("static histogram bounds")
}

/// HdrHistogram V2 + deflate, base64 (standard alphabet, padded).
pub fn serialize_histogram(h: &Histogram<u64>) -> Result<String, HistogramError> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Decodes one histogram written by [`serialize_histogram`].
pub fn deserialize_histogram(s: &str) -> Result<Histogram<u64>, HistogramError> {
    decode_one(0, s)
}

fn decode_one(i: usize, s: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| HistogramError::Base64(i, e))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(i, e))
}

/// Adds serialised histograms together (e.g. the same step from several generators, or several
/// steps): percentiles of the union, never an average of percentiles. Empty input gives an
/// empty histogram.
pub fn merge_histograms(encoded: &[String]) -> Result<Histogram<u64>, HistogramError> {
    merge_into(new_histogram(), encoded)
}

/// Adds serialised per-second histograms: the same precision as each, so the union's
/// percentiles read as one generator's per-second histogram would give them.
pub fn merge_second_histograms(encoded: &[String]) -> Result<Histogram<u64>, HistogramError> {
    merge_into(new_second_histogram(), encoded)
}

fn merge_into(
    mut acc: Histogram<u64>,
    encoded: &[String],
) -> Result<Histogram<u64>, HistogramError> {
    acc.auto(true);
    for (i, s) in encoded.iter().enumerate() {
        let h = decode_one(i, s)?;
        acc.add(&h).map_err(|e| HistogramError::Add(i, e))?;
    }
    Ok(acc)
}

/// Percentiles of a µs histogram in milliseconds; `None` everywhere when it is empty.
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        p50: Some(ms(h.value_at_quantile(0.50))),
        p90: Some(ms(h.value_at_quantile(0.90))),
        p99: Some(ms(h.value_at_quantile(0.99))),
        p999: Some(ms(h.value_at_quantile(0.999))),
        max: Some(ms(h.max())),
        mean: Some(h.mean() / 1000.0),
    }
}
