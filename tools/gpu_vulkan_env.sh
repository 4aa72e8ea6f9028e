# Sourced by the GPU scripts on a lent machine (the `device` tool's `run`): unpacks the carried
# Vulkan/EGL loaders (.gl/*.deb, see the device tool's README) and points them at the NVIDIA
# driver's files, so burn's wgpu backend finds the GPU.
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
