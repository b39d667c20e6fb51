import CVulkan
import Foundation
import SmeltFormats

/// What Vulkan says about one physical device (`smelt devices`).
public struct GPUDeviceInfo: Sendable, Equatable {
    /// Position in Vulkan's enumeration: the N of `--device vulkan:N`.
    public var index: Int
    public var name: String
    /// discrete, integrated, virtual, cpu or other.
    public var type: String
    /// Driver name and version as the driver reports them (e.g. "llvmpipe · Mesa 22.3.6").
    public var driver: String
    public var apiVersion: String
    /// Size of the largest device-local heap, in bytes.
    public var deviceLocalBytes: UInt64
    public var subgroupSize: UInt32
    public var maxStorageBufferRange: UInt32
    public var maxComputeWorkGroupCountX: UInt32
    public var shaderInt64: Bool
    public var shaderFloat16: Bool
    public var shaderInt8: Bool
}

/// Collects the validation layer's error messages (SMELT_VULKAN_VALIDATION=1).
final class ValidationLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ m: String) { lock.lock(); messages.append(m); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
}

private let validationCallback: PFN_vkDebugUtilsMessengerCallbackEXT = { severity, _, data, user in
    if let user, let data, severity.rawValue & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue != 0 {
        let log = Unmanaged<ValidationLog>.fromOpaque(user).takeUnretainedValue()
        log.add(data.pointee.pMessage.map { String(cString: $0) } ?? "(no message)")
    }
    return VkBool32(VK_FALSE)
}

/// A Vulkan instance: the list of devices, and the factory of `GPUDevice`s.
public final class GPUInstance: @unchecked Sendable {
    let vk: VulkanFunctions
    let instance: VkInstance
    let gipa: PFN_vkGetInstanceProcAddr
    var messenger: VkDebugUtilsMessengerEXT? = nil
    let validationLog = ValidationLog()
    /// True when the Khronos validation layer is active (environment SMELT_VULKAN_VALIDATION=1).
    public let validating: Bool

    /// Opens the Vulkan loader and creates an instance. `validation` nil reads SMELT_VULKAN_VALIDATION.
    public init(validation: Bool? = nil) throws {
        gipa = try VulkanLibrary.loader()
        let createInstance = try VulkanLibrary.function(gipa, nil, "vkCreateInstance", as: PFN_vkCreateInstance.self)
        let wantValidation = validation ?? (ProcessInfo.processInfo.environment["SMELT_VULKAN_VALIDATION"] == "1")
        var layers: [String] = []
        var extensions: [String] = []
        if wantValidation {
            let enumerate = try VulkanLibrary.function(gipa, nil, "vkEnumerateInstanceLayerProperties",
                                                       as: PFN_vkEnumerateInstanceLayerProperties.self)
            var n: UInt32 = 0
            _ = enumerate(&n, nil)
            var props = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(n))
            _ = enumerate(&n, &props)
            let names = props.prefix(Int(n)).map { cString($0.layerName) }
            guard names.contains("VK_LAYER_KHRONOS_validation") else {
                throw SmeltError("SMELT_VULKAN_VALIDATION=1 but the Khronos validation layer is not installed (Debian: vulkan-validationlayers)")
            }
            layers = ["VK_LAYER_KHRONOS_validation"]
            extensions = ["VK_EXT_debug_utils"]
        }
        validating = wantValidation
        var app = VkApplicationInfo()
        app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
        app.apiVersion = (1 << 22) | (1 << 12)   // Vulkan 1.1
        var created: VkInstance? = nil
        let r: VkResult = "smelt".withCString { appName in
            app.pApplicationName = appName
            return withCStrings(layers) { layerPtrs in
                withCStrings(extensions) { extPtrs in
                    withUnsafePointer(to: &app) { appPtr in
                        var info = VkInstanceCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                        info.pApplicationInfo = appPtr
                        info.enabledLayerCount = UInt32(layers.count)
                        info.ppEnabledLayerNames = layerPtrs
                        info.enabledExtensionCount = UInt32(extensions.count)
                        info.ppEnabledExtensionNames = extPtrs
                        return createInstance(&info, nil, &created)
                    }
                }
            }
        }
        try vkCheck(r, "creating the instance")
        guard let created else { throw SmeltError("Vulkan: creating the instance returned no instance") }
        instance = created
        do {
            vk = try VulkanFunctions(gipa, instance: created)
        } catch {
            if let destroy = VulkanLibrary.optionalFunction(gipa, created, "vkDestroyInstance", as: PFN_vkDestroyInstance.self) {
                destroy(created, nil)
            }
            throw error
        }
        if wantValidation, let create = vk.createDebugUtilsMessenger {
            var info = VkDebugUtilsMessengerCreateInfoEXT()
            info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
            info.messageSeverity = VkDebugUtilsMessageSeverityFlagsEXT(VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
                                                                        | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue)
            info.messageType = VkDebugUtilsMessageTypeFlagsEXT(VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
                                                                | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
                                                                | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT.rawValue)
            info.pfnUserCallback = validationCallback
            info.pUserData = Unmanaged.passUnretained(validationLog).toOpaque()
            var m: VkDebugUtilsMessengerEXT? = nil
            try vkCheck(create(instance, &info, nil, &m), "creating the validation messenger")
            messenger = m
        }
    }

    deinit {
        if let m = messenger { vk.destroyDebugUtilsMessenger?(instance, m, nil) }
        vk.destroyInstance(instance, nil)
    }

    /// Error messages the validation layer reported so far (empty unless `validating`).
    public var validationErrors: [String] { validationLog.all }

    func physicalDevices() throws -> [VkPhysicalDevice] {
        var n: UInt32 = 0
        try vkCheck(vk.enumeratePhysicalDevices(instance, &n, nil), "listing devices")
        var devs = [VkPhysicalDevice?](repeating: nil, count: Int(n))
        try vkCheck(vk.enumeratePhysicalDevices(instance, &n, &devs), "listing devices")
        return devs.prefix(Int(n)).compactMap { $0 }
    }

    /// Every device Vulkan sees, in its order.
    public func devices() throws -> [GPUDeviceInfo] {
        try physicalDevices().enumerated().map { info(index: $0.offset, $0.element) }
    }

    func info(index: Int, _ pd: VkPhysicalDevice) -> GPUDeviceInfo {
        var driver = VkPhysicalDeviceDriverProperties()
        driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES
        var subgroup = VkPhysicalDeviceSubgroupProperties()
        subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
        var props2 = VkPhysicalDeviceProperties2()
        props2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
        withUnsafeMutablePointer(to: &driver) { dp in
            subgroup.pNext = UnsafeMutableRawPointer(dp)
            withUnsafeMutablePointer(to: &subgroup) { sp in
                props2.pNext = UnsafeMutableRawPointer(sp)
                vk.getPhysicalDeviceProperties2(pd, &props2)
            }
        }
        var f16i8 = VkPhysicalDeviceShaderFloat16Int8Features()
        f16i8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES
        var feats2 = VkPhysicalDeviceFeatures2()
        feats2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        withUnsafeMutablePointer(to: &f16i8) { p in
            feats2.pNext = UnsafeMutableRawPointer(p)
            vk.getPhysicalDeviceFeatures2(pd, &feats2)
        }
        var mem = VkPhysicalDeviceMemoryProperties()
        vk.getPhysicalDeviceMemoryProperties(pd, &mem)
        var local: UInt64 = 0
        withUnsafeBytes(of: mem.memoryHeaps) { raw in
            let heaps = raw.bindMemory(to: VkMemoryHeap.self)
            for i in 0..<Int(mem.memoryHeapCount) where heaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 {
                local = max(local, heaps[i].size)
            }
        }
        let p = props2.properties
        let typeName: String
        switch p.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: typeName = "discrete"
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: typeName = "integrated"
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: typeName = "virtual"
        case VK_PHYSICAL_DEVICE_TYPE_CPU: typeName = "cpu"
        default: typeName = "other"
        }
        let v = p.apiVersion
        return GPUDeviceInfo(
            index: index, name: cString(p.deviceName), type: typeName,
            driver: [cString(driver.driverName), cString(driver.driverInfo)].filter { !$0.isEmpty }.joined(separator: " · "),
            apiVersion: "\((v >> 22) & 0x7f).\((v >> 12) & 0x3ff).\(v & 0xfff)",
            deviceLocalBytes: local, subgroupSize: subgroup.subgroupSize,
            maxStorageBufferRange: p.limits.maxStorageBufferRange,
            maxComputeWorkGroupCountX: p.limits.maxComputeWorkGroupCount.0,
            shaderInt64: feats2.features.shaderInt64 != 0, shaderFloat16: f16i8.shaderFloat16 != 0,
            shaderInt8: f16i8.shaderInt8 != 0)
    }

    /// Opens device `index` (nil: the first discrete GPU, else integrated, virtual, then any).
    public func open(index: Int?) throws -> GPUDevice {
        let pds = try physicalDevices()
        guard !pds.isEmpty else {
            throw SmeltError("no Vulkan device: the loader found no GPU or driver (Debian: apt-get install mesa-vulkan-drivers for lavapipe)")
        }
        let chosen: Int
        if let index {
            guard index >= 0 && index < pds.count else {
                throw SmeltError("no Vulkan device \(index): \(pds.count) device(s) found (see smelt devices)")
            }
            chosen = index
        } else {
            let infos = pds.enumerated().map { info(index: $0.offset, $0.element) }
            let rank = ["discrete": 0, "integrated": 1, "virtual": 2, "cpu": 3]
            chosen = infos.min { (rank[$0.type] ?? 4, $0.index) < (rank[$1.type] ?? 4, $1.index) }?.index ?? 0
        }
        return try GPUDevice(instance: self, physical: pds[chosen], info: info(index: chosen, pds[chosen]))
    }
}

func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let dup = strings.map { strdup($0) }
    defer { dup.forEach { free($0) } }
    let ptrs: [UnsafePointer<CChar>?] = dup.map { $0.map { UnsafePointer($0) } }
    return ptrs.withUnsafeBufferPointer { body(strings.isEmpty ? nil : $0.baseAddress) }
}
