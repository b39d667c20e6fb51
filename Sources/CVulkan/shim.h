// Vulkan headers only: SmeltGPU loads libvulkan at run time (dlopen), so that smelt
// starts and says what is missing on machines without a Vulkan loader.
#define VK_NO_PROTOTYPES 1
#include <vulkan/vulkan.h>
#include <dlfcn.h>
