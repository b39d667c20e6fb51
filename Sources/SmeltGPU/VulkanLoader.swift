// The one place Smelt calls Vulkan: libvulkan.so.1 is opened at run time and every entry
// point is looked up through vkGetInstanceProcAddr / vkGetDeviceProcAddr. A missing loader
// or function is a SmeltError, never a crash at start-up.
import CVulkan
import Foundation
import SmeltFormats

/// A Vulkan result code turned into a one-line error naming the call.
@inline(__always) func vkCheck(_ r: VkResult, _ what: String) throws {
    if r != VK_SUCCESS { throw SmeltError("Vulkan: \(what) failed (\(vkResultName(r)))") }
}

func vkResultName(_ r: VkResult) -> String {
    switch r {
    case VK_NOT_READY: return "VK_NOT_READY"
    case VK_TIMEOUT: return "VK_TIMEOUT"
    case VK_INCOMPLETE: return "VK_INCOMPLETE"
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY"
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY: the GPU is out of memory"
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED"
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST"
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED"
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT"
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT"
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT"
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER: no Vulkan driver (ICD) found"
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS"
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED"
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL"
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY"
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV: the driver rejected a shader"
    default: return "VkResult \(r.rawValue)"
    }
}

/// The Vulkan entry points Smelt uses, resolved once per instance / device.
struct VulkanFunctions {
    let createInstance: PFN_vkCreateInstance
    let destroyInstance: PFN_vkDestroyInstance
    let enumeratePhysicalDevices: PFN_vkEnumeratePhysicalDevices
    let getPhysicalDeviceProperties: PFN_vkGetPhysicalDeviceProperties
    let getPhysicalDeviceProperties2: PFN_vkGetPhysicalDeviceProperties2
    let getPhysicalDeviceFeatures2: PFN_vkGetPhysicalDeviceFeatures2
    let getPhysicalDeviceMemoryProperties: PFN_vkGetPhysicalDeviceMemoryProperties
    let getPhysicalDeviceQueueFamilyProperties: PFN_vkGetPhysicalDeviceQueueFamilyProperties
    let createDevice: PFN_vkCreateDevice
    let getDeviceProcAddr: PFN_vkGetDeviceProcAddr
    let enumerateInstanceLayerProperties: PFN_vkEnumerateInstanceLayerProperties
    let createDebugUtilsMessenger: PFN_vkCreateDebugUtilsMessengerEXT?
    let destroyDebugUtilsMessenger: PFN_vkDestroyDebugUtilsMessengerEXT?
}

/// Device-level entry points.
struct VulkanDeviceFunctions {
    let destroyDevice: PFN_vkDestroyDevice
    let getDeviceQueue: PFN_vkGetDeviceQueue
    let createBuffer: PFN_vkCreateBuffer
    let destroyBuffer: PFN_vkDestroyBuffer
    let getBufferMemoryRequirements: PFN_vkGetBufferMemoryRequirements
    let allocateMemory: PFN_vkAllocateMemory
    let freeMemory: PFN_vkFreeMemory
    let bindBufferMemory: PFN_vkBindBufferMemory
    let mapMemory: PFN_vkMapMemory
    let createShaderModule: PFN_vkCreateShaderModule
    let destroyShaderModule: PFN_vkDestroyShaderModule
    let createDescriptorSetLayout: PFN_vkCreateDescriptorSetLayout
    let destroyDescriptorSetLayout: PFN_vkDestroyDescriptorSetLayout
    let createPipelineLayout: PFN_vkCreatePipelineLayout
    let destroyPipelineLayout: PFN_vkDestroyPipelineLayout
    let createComputePipelines: PFN_vkCreateComputePipelines
    let destroyPipeline: PFN_vkDestroyPipeline
    let createDescriptorPool: PFN_vkCreateDescriptorPool
    let destroyDescriptorPool: PFN_vkDestroyDescriptorPool
    let allocateDescriptorSets: PFN_vkAllocateDescriptorSets
    let updateDescriptorSets: PFN_vkUpdateDescriptorSets
    let resetDescriptorPool: PFN_vkResetDescriptorPool
    let createCommandPool: PFN_vkCreateCommandPool
    let destroyCommandPool: PFN_vkDestroyCommandPool
    let allocateCommandBuffers: PFN_vkAllocateCommandBuffers
    let resetCommandBuffer: PFN_vkResetCommandBuffer
    let beginCommandBuffer: PFN_vkBeginCommandBuffer
    let endCommandBuffer: PFN_vkEndCommandBuffer
    let cmdBindPipeline: PFN_vkCmdBindPipeline
    let cmdBindDescriptorSets: PFN_vkCmdBindDescriptorSets
    let cmdPushConstants: PFN_vkCmdPushConstants
    let cmdDispatch: PFN_vkCmdDispatch
    let cmdPipelineBarrier: PFN_vkCmdPipelineBarrier
    let createFence: PFN_vkCreateFence
    let destroyFence: PFN_vkDestroyFence
    let waitForFences: PFN_vkWaitForFences
    let resetFences: PFN_vkResetFences
    let queueSubmit: PFN_vkQueueSubmit
    let deviceWaitIdle: PFN_vkDeviceWaitIdle
}

/// libvulkan.so.1, opened once per process.
enum VulkanLibrary {
    nonisolated(unsafe) private static var handle: UnsafeMutableRawPointer? = nil
    nonisolated(unsafe) private static var getInstanceProcAddr: PFN_vkGetInstanceProcAddr? = nil
    private static let lock = NSLock()

    /// The loader's vkGetInstanceProcAddr, or an error saying the loader is missing.
    static func loader() throws -> PFN_vkGetInstanceProcAddr {
        lock.lock(); defer { lock.unlock() }
        if let g = getInstanceProcAddr { return g }
        let names = ["libvulkan.so.1", "libvulkan.so", "libvulkan.1.dylib", "libMoltenVK.dylib"]
        for n in names {
            if let h = dlopen(n, RTLD_NOW | RTLD_LOCAL) {
                if let sym = dlsym(h, "vkGetInstanceProcAddr") {
                    handle = h
                    let g = unsafeBitCast(sym, to: PFN_vkGetInstanceProcAddr.self)
                    getInstanceProcAddr = g
                    return g
                }
                dlclose(h)
            }
        }
        throw SmeltError("no Vulkan loader: libvulkan.so.1 could not be opened (Debian: apt-get install libvulkan1 mesa-vulkan-drivers)")
    }

    /// Looks up `name` through vkGetInstanceProcAddr.
    static func function<T>(_ gipa: PFN_vkGetInstanceProcAddr, _ instance: VkInstance?, _ name: String,
                            as: T.Type) throws -> T {
        guard let f = name.withCString({ gipa(instance, $0) }) else {
            throw SmeltError("Vulkan: the loader has no function \(name)")
        }
        return unsafeBitCast(f, to: T.self)
    }

    static func optionalFunction<T>(_ gipa: PFN_vkGetInstanceProcAddr, _ instance: VkInstance?, _ name: String,
                                    as: T.Type) -> T? {
        guard let f = name.withCString({ gipa(instance, $0) }) else { return nil }
        return unsafeBitCast(f, to: T.self)
    }
}

extension VulkanFunctions {
    /// The instance-level table, after `vkCreateInstance`.
    init(_ gipa: PFN_vkGetInstanceProcAddr, instance: VkInstance) throws {
        func f<T>(_ n: String, _ t: T.Type) throws -> T { try VulkanLibrary.function(gipa, instance, n, as: t) }
        createInstance = try VulkanLibrary.function(gipa, nil, "vkCreateInstance", as: PFN_vkCreateInstance.self)
        destroyInstance = try f("vkDestroyInstance", PFN_vkDestroyInstance.self)
        enumeratePhysicalDevices = try f("vkEnumeratePhysicalDevices", PFN_vkEnumeratePhysicalDevices.self)
        getPhysicalDeviceProperties = try f("vkGetPhysicalDeviceProperties", PFN_vkGetPhysicalDeviceProperties.self)
        getPhysicalDeviceProperties2 = try f("vkGetPhysicalDeviceProperties2", PFN_vkGetPhysicalDeviceProperties2.self)
        getPhysicalDeviceFeatures2 = try f("vkGetPhysicalDeviceFeatures2", PFN_vkGetPhysicalDeviceFeatures2.self)
        getPhysicalDeviceMemoryProperties = try f("vkGetPhysicalDeviceMemoryProperties",
                                                  PFN_vkGetPhysicalDeviceMemoryProperties.self)
        getPhysicalDeviceQueueFamilyProperties = try f("vkGetPhysicalDeviceQueueFamilyProperties",
                                                       PFN_vkGetPhysicalDeviceQueueFamilyProperties.self)
        createDevice = try f("vkCreateDevice", PFN_vkCreateDevice.self)
        getDeviceProcAddr = try f("vkGetDeviceProcAddr", PFN_vkGetDeviceProcAddr.self)
        enumerateInstanceLayerProperties = try VulkanLibrary.function(gipa, nil, "vkEnumerateInstanceLayerProperties",
                                                                      as: PFN_vkEnumerateInstanceLayerProperties.self)
        createDebugUtilsMessenger = VulkanLibrary.optionalFunction(gipa, instance, "vkCreateDebugUtilsMessengerEXT",
                                                                   as: PFN_vkCreateDebugUtilsMessengerEXT.self)
        destroyDebugUtilsMessenger = VulkanLibrary.optionalFunction(gipa, instance, "vkDestroyDebugUtilsMessengerEXT",
                                                                    as: PFN_vkDestroyDebugUtilsMessengerEXT.self)
    }
}

extension VulkanDeviceFunctions {
    init(_ gdpa: PFN_vkGetDeviceProcAddr, device: VkDevice) throws {
        func f<T>(_ n: String, _ t: T.Type) throws -> T {
            guard let p = n.withCString({ gdpa(device, $0) }) else {
                throw SmeltError("Vulkan: the device has no function \(n)")
            }
            return unsafeBitCast(p, to: T.self)
        }
        destroyDevice = try f("vkDestroyDevice", PFN_vkDestroyDevice.self)
        getDeviceQueue = try f("vkGetDeviceQueue", PFN_vkGetDeviceQueue.self)
        createBuffer = try f("vkCreateBuffer", PFN_vkCreateBuffer.self)
        destroyBuffer = try f("vkDestroyBuffer", PFN_vkDestroyBuffer.self)
        getBufferMemoryRequirements = try f("vkGetBufferMemoryRequirements", PFN_vkGetBufferMemoryRequirements.self)
        allocateMemory = try f("vkAllocateMemory", PFN_vkAllocateMemory.self)
        freeMemory = try f("vkFreeMemory", PFN_vkFreeMemory.self)
        bindBufferMemory = try f("vkBindBufferMemory", PFN_vkBindBufferMemory.self)
        mapMemory = try f("vkMapMemory", PFN_vkMapMemory.self)
        createShaderModule = try f("vkCreateShaderModule", PFN_vkCreateShaderModule.self)
        destroyShaderModule = try f("vkDestroyShaderModule", PFN_vkDestroyShaderModule.self)
        createDescriptorSetLayout = try f("vkCreateDescriptorSetLayout", PFN_vkCreateDescriptorSetLayout.self)
        destroyDescriptorSetLayout = try f("vkDestroyDescriptorSetLayout", PFN_vkDestroyDescriptorSetLayout.self)
        createPipelineLayout = try f("vkCreatePipelineLayout", PFN_vkCreatePipelineLayout.self)
        destroyPipelineLayout = try f("vkDestroyPipelineLayout", PFN_vkDestroyPipelineLayout.self)
        createComputePipelines = try f("vkCreateComputePipelines", PFN_vkCreateComputePipelines.self)
        destroyPipeline = try f("vkDestroyPipeline", PFN_vkDestroyPipeline.self)
        createDescriptorPool = try f("vkCreateDescriptorPool", PFN_vkCreateDescriptorPool.self)
        destroyDescriptorPool = try f("vkDestroyDescriptorPool", PFN_vkDestroyDescriptorPool.self)
        allocateDescriptorSets = try f("vkAllocateDescriptorSets", PFN_vkAllocateDescriptorSets.self)
        updateDescriptorSets = try f("vkUpdateDescriptorSets", PFN_vkUpdateDescriptorSets.self)
        resetDescriptorPool = try f("vkResetDescriptorPool", PFN_vkResetDescriptorPool.self)
        createCommandPool = try f("vkCreateCommandPool", PFN_vkCreateCommandPool.self)
        destroyCommandPool = try f("vkDestroyCommandPool", PFN_vkDestroyCommandPool.self)
        allocateCommandBuffers = try f("vkAllocateCommandBuffers", PFN_vkAllocateCommandBuffers.self)
        resetCommandBuffer = try f("vkResetCommandBuffer", PFN_vkResetCommandBuffer.self)
        beginCommandBuffer = try f("vkBeginCommandBuffer", PFN_vkBeginCommandBuffer.self)
        endCommandBuffer = try f("vkEndCommandBuffer", PFN_vkEndCommandBuffer.self)
        cmdBindPipeline = try f("vkCmdBindPipeline", PFN_vkCmdBindPipeline.self)
        cmdBindDescriptorSets = try f("vkCmdBindDescriptorSets", PFN_vkCmdBindDescriptorSets.self)
        cmdPushConstants = try f("vkCmdPushConstants", PFN_vkCmdPushConstants.self)
        cmdDispatch = try f("vkCmdDispatch", PFN_vkCmdDispatch.self)
        cmdPipelineBarrier = try f("vkCmdPipelineBarrier", PFN_vkCmdPipelineBarrier.self)
        createFence = try f("vkCreateFence", PFN_vkCreateFence.self)
        destroyFence = try f("vkDestroyFence", PFN_vkDestroyFence.self)
        waitForFences = try f("vkWaitForFences", PFN_vkWaitForFences.self)
        resetFences = try f("vkResetFences", PFN_vkResetFences.self)
        queueSubmit = try f("vkQueueSubmit", PFN_vkQueueSubmit.self)
        deviceWaitIdle = try f("vkDeviceWaitIdle", PFN_vkDeviceWaitIdle.self)
    }
}
