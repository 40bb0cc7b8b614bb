//! Decoding a file: the packet loop, with timestamp repair (discontinuities, jitter), GOP
//! and non-reference skipping between samples, and hardware decoding with a software retry.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

use super::convert::{FrameConverter, Rotation};
use super::hw;
use super::sample::{FrameSampler, SamplingPolicy};
use super::stream::{open_decoder, DecoderSetup, StreamClock};
use super::{
    check_decodable, open, read_packet, DecodeError, DecodeSummary, SampleOptions, SampledFrame,
};

/// A timestamp further back than this from the last frame is a discontinuity (smaller steps
/// back are jitter: that frame is placed one frame after the last).
const REANCHOR_BACK_MS: f64 = 1000.0;

/// In containers that allow discontinuities (MPEG-TS), a jump forward by more than this is
/// one too (the `ffmpeg` command uses the same threshold).
const REANCHOR_FORWARD_MS: f64 = 10_000.0;

/// Frames before a sample target from which every frame is decoded (judged by each packet's
/// own timestamp; the margin absorbs rounding and timestamp jitter).
const SKIP_MARGIN_FRAMES: f64 = 3.0;

/// Decode timestamps of the stream's keyframes from an MP4/MOV sample index (ascending),
/// or nothing for other containers: their indexes (when any) do not list decode
/// timestamps, so GOP skipping there is left out rather than guessed.
fn indexed_keyframes(ictx: &ffmpeg::format::context::Input, index: usize) -> Vec<i64> {
    // SAFETY: reads of the open input's format name and of its stream's index entries,
    // which libavformat owns and does not change while nothing reads from the input.
    unsafe {
        let name = std::ffi::CStr::from_ptr((*(*ictx.as_ptr()).iformat).name);
        if !name.to_bytes().starts_with(b"mov,mp4") {
            return Vec::new();
        }
        let stream = *(*ictx.as_ptr()).streams.add(index);
        let count = ffi::avformat_index_get_entries_count(stream);
        let mut out = Vec::new();
        for i in 0..count {
            let entry = ffi::avformat_index_get_entry(stream, i);
            if !entry.is_null() && (*entry).flags() & ffi::AVINDEX_KEYFRAME != 0 {
                out.push((*entry).timestamp);
            }
        }
        out.sort_unstable();
        out
    }
}

/// Decodes `path`, sampling frames every `options.interval` seconds by presentation time,
/// and hands each preprocessed frame to `on_frame` (which returns false to stop).
/// Corrupt packets are skipped and counted; a failure part-way reports how far it got.
/// With hardware decoding allowed, a source the hardware cannot decode before its first
/// frame is decoded again in software (logged, never fatal).
pub fn decode_samples(
    path: &Path,
    options: &SampleOptions,
    cancel: &AtomicBool,
    mut on_frame: impl FnMut(SampledFrame) -> bool,
) -> Result<DecodeSummary, DecodeError> {
    if !options.hwaccel.wants_cuda() {
        return decode_run(path, options, cancel, &mut on_frame, false);
    }
    let mut handed_on = 0u64;
    let hw = decode_run(
        path,
        options,
        cancel,
        &mut |f| {
            handed_on += 1;
            on_frame(f)
        },
        true,
    );
    let failed_early = match &hw {
        Ok(s) => s.decoded == 0 && !s.stopped,
        Err(DecodeError::Open { .. } | DecodeError::NoVideo { .. }) => false,
        Err(_) => true,
    };
    if failed_early && handed_on == 0 {
        let reason = match &hw {
            Ok(_) => "no frame came out of the hardware decoder".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(path = %path.display(), %reason, "hardware decoding failed, decoding in software");
        return decode_run(path, options, cancel, &mut on_frame, false);
    }
    hw
}

fn decode_run(
    path: &Path,
    options: &SampleOptions,
    cancel: &AtomicBool,
    on_frame: &mut dyn FnMut(SampledFrame) -> bool,
    try_hw: bool,
) -> Result<DecodeSummary, DecodeError> {
    let p = path.display().to_string();
    let (mut ictx, index) = open(path)?;
    let (clock, avg_rate, rotation) = {
        let stream = ictx.stream(index).expect("stream index from best()");
        (
            StreamClock::of(&stream),
            stream.avg_frame_rate(),
            Rotation::of_stream(&stream),
        )
    };
    let codec_err = |e: ffmpeg::Error| DecodeError::Codec {
        path: p.clone(),
        reason: e.to_string(),
    };
    check_decodable(
        &p,
        &ictx
            .stream(index)
            .expect("stream index from best()")
            .parameters(),
    )?;
    let setup = DecoderSetup {
        threads: Some((
            ffmpeg::codec::threading::Type::Frame,
            options.decoder_threads,
        )),
        keyframes_only: options.policy == SamplingPolicy::Keyframes,
        cuda: try_hw,
    };
    let (mut decoder, _) = open_decoder(&ictx, index, path, setup).map_err(codec_err)?;
    let frame_ms = if avg_rate.numerator() > 0 && avg_rate.denominator() > 0 {
        1000.0 * f64::from(avg_rate.denominator()) / f64::from(avg_rate.numerator())
    } else {
        40.0
    };
    let mut origin: Option<i64> = clock.start;
    // Added to every timestamp-derived offset after a discontinuity was bridged (shared with
    // the packet loop, which skips whole GOPs by timestamp).
    let shift_ms = std::cell::Cell::new(0.0f64);
    let keyframes = indexed_keyframes(&ictx, index);
    // The largest presentation delay (pts - dts) of a keyframe so far: bounds the next
    // keyframe's pts (an encoder delays every keyframe by the same amount).
    let mut reorder: i64 = 0;
    // Containers whose timestamps may jump (MPEG-TS): a forward jump is a discontinuity too.
    // SAFETY: plain read of the open input's format flags.
    let discontinuous = unsafe { (*(*ictx.as_ptr()).iformat).flags & ffi::AVFMT_TS_DISCONT != 0 };
    let mut sampler = FrameSampler::new(options.interval, options.resume_after_ms, options.policy);
    let mut converter = FrameConverter::new(options.geometry.clone(), rotation);
    let mut summary = DecodeSummary::default();
    let mut last_ms: f64 = -1.0;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut system_frame = ffmpeg::frame::Video::empty();
    let mut packet = ffmpeg::Packet::empty();
    let mut read_errors = 0u32;
    // (last decoded offset, next sample target), read by the packet loop to decide whether
    // frames nobody references can be skipped.
    let position = std::cell::Cell::new((-1.0f64, 0.0f64));

    let mut drain = |decoder: &mut ffmpeg::decoder::Video,
                     summary: &mut DecodeSummary|
     -> Result<bool, DecodeError> {
        while decoder.receive_frame(&mut frame).is_ok() {
            summary.decoded += 1;
            let offset_ms = match frame.timestamp() {
                Some(ts) => {
                    let origin = *origin.get_or_insert(ts);
                    clock.ms(ts - origin) + shift_ms.get()
                }
                None => last_ms + frame_ms,
            };
            if last_ms < 0.0 {
                // Frames before the start time (edit lists, pre-roll) are not footage.
                if offset_ms < -0.5 {
                    continue;
                }
                last_ms = offset_ms.max(0.0);
            } else if offset_ms < last_ms - REANCHOR_BACK_MS
                || (discontinuous && offset_ms > last_ms + REANCHOR_FORWARD_MS)
            {
                // A timestamp discontinuity (concatenated or restarted MPEG-TS, a clock
                // reset): the footage goes on one frame after the last one, and the following
                // frames keep their spacing from this one.
                let next = last_ms + frame_ms;
                shift_ms.set(shift_ms.get() + next - offset_ms);
                summary.discontinuities += 1;
                last_ms = next;
            } else if offset_ms <= last_ms {
                // A small step back or a repeated timestamp: one frame after the last one.
                last_ms += frame_ms;
            } else {
                last_ms = offset_ms;
            }
            let taken = sampler.due(last_ms);
            position.set((last_ms, sampler.next_ms()));
            if !taken {
                continue;
            }
            let source = if hw::is_on_device(&frame) {
                // Only sampled frames leave the GPU.
                hw::download(&frame, &mut system_frame).map_err(|e| DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms as u64,
                    reason: format!("cannot copy a frame from the GPU: {e}"),
                })?;
                &system_frame
            } else {
                &frame
            };
            let go_on = sampler
                .pick(source, last_ms, &mut converter, summary, &mut *on_frame)
                .map_err(|e| DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms as u64,
                    reason: format!("pixel conversion failed: {e}"),
                })?;
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    };

    loop {
        if cancel.load(Ordering::Relaxed) {
            summary.stopped = true;
            return Ok(summary);
        }
        if let Some(heartbeat) = &options.heartbeat {
            heartbeat.beat();
        }
        match read_packet(&mut packet, &mut ictx, &mut read_errors) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(DecodeError::Stream {
                    path: p.clone(),
                    at_ms: last_ms.max(0.0) as u64,
                    reason: e.to_string(),
                })
            }
        }
        if packet.stream() != index {
            continue;
        }
        // The offset of a packet's frame, ms (as the frames' offsets are computed).
        let packet_ms = |packet: &ffmpeg::Packet| {
            let start = clock.start?;
            packet
                .pts()
                .map(|pts| clock.ms(pts - start) + shift_ms.get())
        };
        // A packet before a keyframe that is itself at or before the next sample target
        // belongs to a GOP no sample needs: it is not decoded at all (MP4/MOV index).
        if let (Some(dts), Some(pts), true) = (packet.dts(), packet.pts(), packet.is_key()) {
            reorder = reorder.max(pts - dts);
        }
        // Under the keyframes policy the decoder would discard every other packet anyway;
        // not sending them keeps its frame threads busy with keyframes only.
        if options.policy == SamplingPolicy::Keyframes && !packet.is_key() {
            summary.packets_skipped += 1;
            continue;
        }
        if let (false, false, Some(start)) = (keyframes.is_empty(), packet.is_key(), clock.start) {
            let (seen, next) = position.get();
            if let Some(dts) = packet.dts().filter(|_| seen >= 0.0) {
                let after = keyframes.partition_point(|&k| k <= dts);
                if let Some(&k) = keyframes.get(after) {
                    // The keyframe's presentation offset is at most its decode time plus the
                    // largest presentation delay seen.
                    let latest_ms = clock.ms(k + reorder - start) + shift_ms.get();
                    if latest_ms <= next + 0.5 {
                        summary.packets_skipped += 1;
                        // The stream has moved on even though no frame came out.
                        if let Some(at) = packet_ms(&packet) {
                            position.set((seen.max(at), next));
                        }
                        continue;
                    }
                }
            }
        }
        // Between samples, frames no other frame references (most B-frames) need not be
        // decoded at all. The packet's own timestamp says where its frame is; near a sample
        // target every frame is decoded, so the sampled frames are exactly the same.
        if options.policy != SamplingPolicy::Keyframes {
            let (seen, next) = position.get();
            let far = match packet_ms(&packet) {
                // Only when the packet's offset is plausible next to what was decoded (around
                // a discontinuity it is not).
                Some(at) if seen >= 0.0 => {
                    next - at > SKIP_MARGIN_FRAMES * frame_ms
                        && at >= seen - REANCHOR_BACK_MS
                        && at <= seen + REANCHOR_FORWARD_MS
                }
                _ => false,
            };
            decoder.skip_frame(if far {
                ffmpeg::codec::discard::Discard::NonReference
            } else {
                ffmpeg::codec::discard::Discard::Default
            });
        }
        if decoder.send_packet(&packet).is_err() {
            summary.bad_packets += 1;
            continue;
        }
        if !drain(&mut decoder, &mut summary)? {
            summary.stopped = true;
            return Ok(summary);
        }
    }
    let _ = decoder.send_eof();
    if !drain(&mut decoder, &mut summary)? {
        summary.stopped = true;
    }
    Ok(summary)
}
