//! Hardware decoding through FFmpeg's CUDA hwaccel (NVDEC), with the policy that picks it.

use std::path::Path;

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;

/// Hardware decoding policy, `ingest.hwaccel`: `auto`, `cuda` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum HwAccel {
    /// CUDA/NVDEC in a build with the `cuda` feature, software otherwise.
    #[default]
    Auto,
    /// Try CUDA/NVDEC in any build.
    Cuda,
    /// Software decoding only.
    None,
}

impl HwAccel {
    /// True when decoding should try the CUDA hwaccel first.
    pub fn wants_cuda(self) -> bool {
        match self {
            Self::Auto => cfg!(feature = "cuda"),
            Self::Cuda => true,
            Self::None => false,
        }
    }
}

crate::setting::named_setting!(HwAccel, "auto, cuda or none", {
    "auto" => Auto,
    "cuda" => Cuda,
    "none" => None,
});

/// Why hardware decoding is not used for a stream (logged; decoding goes on in software).
#[derive(Debug, thiserror::Error)]
enum HwUnavailable {
    /// No decoder for the stream's codec.
    #[error("no decoder for this codec")]
    NoDecoder,
    /// The decoder has no CUDA hwaccel in these FFmpeg libraries.
    #[error("FFmpeg's {0} decoder has no CUDA hwaccel in these libraries")]
    NoHwaccel(String),
    /// FFmpeg could not open a CUDA device.
    #[error("cannot open a CUDA device: {0}")]
    Device(ffmpeg::Error),
}

/// Attaches a CUDA device to the decoder when the decoder has a CUDA hwaccel and FFmpeg
/// can open the device; logs and returns false (software decoding) otherwise.
pub(super) fn attach_cuda(context: &mut ffmpeg::codec::context::Context, path: &Path) -> bool {
    match try_attach(context) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "hardware decoding (cuda)");
            true
        }
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "hardware decoding unavailable, decoding in software");
            false
        }
    }
}

fn try_attach(context: &mut ffmpeg::codec::context::Context) -> Result<(), HwUnavailable> {
    // SAFETY: FFmpeg calls on the live, not yet opened codec context; the device
    // reference is handed to the context, which releases it when freed.
    unsafe {
        let ctx = context.as_mut_ptr();
        let codec = ffi::avcodec_find_decoder((*ctx).codec_id);
        if codec.is_null() {
            return Err(HwUnavailable::NoDecoder);
        }
        let mut supported = false;
        for i in 0.. {
            let config = ffi::avcodec_get_hw_config(codec, i);
            if config.is_null() {
                break;
            }
            let by_device = (*config).methods
                & ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as libc::c_int
                != 0;
            if by_device && (*config).device_type == ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA {
                supported = true;
                break;
            }
        }
        if !supported {
            let name = std::ffi::CStr::from_ptr((*codec).name).to_string_lossy();
            return Err(HwUnavailable::NoHwaccel(name.into_owned()));
        }
        let mut device: *mut ffi::AVBufferRef = std::ptr::null_mut();
        let rc = ffi::av_hwdevice_ctx_create(
            &mut device,
            ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            std::ptr::null(),
            std::ptr::null_mut(),
            0,
        );
        if rc < 0 || device.is_null() {
            return Err(HwUnavailable::Device(ffmpeg::Error::from(rc)));
        }
        (*ctx).hw_device_ctx = device;
        (*ctx).get_format = Some(pick_format);
    }
    Ok(())
}

/// FFmpeg's format negotiation: CUDA surfaces when offered (the hwaccel accepted the
/// stream), else FFmpeg's default software format.
unsafe extern "C" fn pick_format(
    ctx: *mut ffi::AVCodecContext,
    formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    let mut p = formats;
    // SAFETY: FFmpeg passes a list terminated by AV_PIX_FMT_NONE.
    unsafe {
        while *p != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if *p == ffi::AVPixelFormat::AV_PIX_FMT_CUDA {
                return *p;
            }
            p = p.add(1);
        }
        tracing::warn!("the hardware decoder refused this stream, decoding in software");
        ffi::avcodec_default_get_format(ctx, formats)
    }
}

/// True when the frame's pixels are in GPU memory.
pub(super) fn is_on_device(frame: &ffmpeg::frame::Video) -> bool {
    // SAFETY: a plain read of the frame's format field.
    unsafe { (*frame.as_ptr()).format == ffi::AVPixelFormat::AV_PIX_FMT_CUDA as libc::c_int }
}

/// Copies a GPU frame to system memory (NV12 or P010), keeping its timing and colour tags.
pub(super) fn download(
    frame: &ffmpeg::frame::Video,
    out: &mut ffmpeg::frame::Video,
) -> Result<(), ffmpeg::Error> {
    // SAFETY: both frames are live; FFmpeg allocates `out`'s buffers.
    unsafe {
        ffi::av_frame_unref(out.as_mut_ptr());
        let rc = ffi::av_hwframe_transfer_data(out.as_mut_ptr(), frame.as_ptr(), 0);
        if rc < 0 {
            return Err(ffmpeg::Error::from(rc));
        }
        let rc = ffi::av_frame_copy_props(out.as_mut_ptr(), frame.as_ptr());
        if rc < 0 {
            return Err(ffmpeg::Error::from(rc));
        }
    }
    Ok(())
}
