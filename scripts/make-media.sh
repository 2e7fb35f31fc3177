#!/usr/bin/env bash
# Regenerates the pre-encoded media that `orbita bot` publishes.
#
# Output (in assets/media/, relative to the repository root):
#   vp8-1280x720.ivf  vp8-640x360.ivf  vp8-320x180.ivf
#       The same 3 s, 30 fps moving test pattern as three simulcast layers,
#       VP8 with a keyframe every 30 frames, no alt-ref frames and
#       error-resilient mode, so every frame can be sent as-is over RTP.
#   opus-48k.ogg
#       3 s of a 440 Hz sine, 48 kHz mono Opus in 20 ms frames.
#
# Only synthetic ffmpeg sources are used; no input files are needed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${repo_root}/assets/media"
mkdir -p "${out_dir}"

command -v ffmpeg >/dev/null || { echo "ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

duration=3
fps=30

# encode_vp8 WIDTH HEIGHT BITRATE
encode_vp8() {
    local width="$1" height="$2" bitrate="$3"
    local out="${out_dir}/vp8-${width}x${height}.ivf"
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=${width}x${height}:rate=${fps}:duration=${duration}" \
        -pix_fmt yuv420p \
        -c:v libvpx -b:v "${bitrate}" -maxrate "${bitrate}" -minrate "${bitrate}" \
        -deadline realtime -cpu-used 4 \
        -g "${fps}" -keyint_min "${fps}" \
        -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 \
        -f ivf "${out}"
    echo "wrote ${out} ($(stat -c %s "${out}") bytes)"
}

encode_vp8 1280 720 1200k
encode_vp8 640 360 450k
encode_vp8 320 180 150k

opus_out="${out_dir}/opus-48k.ogg"
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${duration}" \
    -ac 1 -c:a libopus -b:a 32k -application voip -frame_duration 20 \
    -f ogg "${opus_out}"
echo "wrote ${opus_out} ($(stat -c %s "${opus_out}") bytes)"
