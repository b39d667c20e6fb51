import CVulkan
import Foundation
import SmeltFormats

/// An open Vulkan device with one compute queue: buffers, pipelines, submission.
/// Not thread-safe; one quantizer drives it from one thread.
public final class GPUDevice: @unchecked Sendable {
    /// Keeps the instance alive as long as the device.
    public let instance: GPUInstance
    public let info: GPUDeviceInfo
    let vkd: VulkanDeviceFunctions
    let device: VkDevice
    let physical: VkPhysicalDevice
    let queue: VkQueue
    let commandPool: VkCommandPool
    let memoryProperties: VkPhysicalDeviceMemoryProperties

    init(instance: GPUInstance, physical: VkPhysicalDevice, info: GPUDeviceInfo) throws {
        self.instance = instance
        self.info = info
        self.physical = physical
        let vk = instance.vk
        var nq: UInt32 = 0
        vk.getPhysicalDeviceQueueFamilyProperties(physical, &nq, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(nq))
        vk.getPhysicalDeviceQueueFamilyProperties(physical, &nq, &families)
        guard let family = families.firstIndex(where: { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }) else {
            throw SmeltError("Vulkan device \(info.index) (\(info.name)) has no compute queue")
        }
        var priority: Float = 1
        var queueInfo = VkDeviceQueueCreateInfo()
        queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
        queueInfo.queueFamilyIndex = UInt32(family)
        queueInfo.queueCount = 1
        var created: VkDevice? = nil
        let r: VkResult = withUnsafePointer(to: &priority) { pp in
            queueInfo.pQueuePriorities = pp
            return withUnsafePointer(to: &queueInfo) { qp in
                var info = VkDeviceCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                info.queueCreateInfoCount = 1
                info.pQueueCreateInfos = qp
                return vk.createDevice(physical, &info, nil, &created)
            }
        }
        try vkCheck(r, "creating device \(info.index) (\(info.name))")
        guard let created else { throw SmeltError("Vulkan: creating device \(info.index) returned no device") }
        device = created
        do {
            vkd = try VulkanDeviceFunctions(vk.getDeviceProcAddr, device: created)
        } catch {
            if let destroy = VulkanLibrary.optionalFunction(instance.gipa, instance.instance, "vkDestroyDevice",
                                                            as: PFN_vkDestroyDevice.self) { destroy(created, nil) }
            throw error
        }
        var q: VkQueue? = nil
        vkd.getDeviceQueue(created, UInt32(family), 0, &q)
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.flags = VkCommandPoolCreateFlags(VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue)
        poolInfo.queueFamilyIndex = UInt32(family)
        var pool: VkCommandPool? = nil
        let pr = vkd.createCommandPool(created, &poolInfo, nil, &pool)
        guard let q, pr == VK_SUCCESS, let pool else {
            vkd.destroyDevice(created, nil)
            try vkCheck(pr == VK_SUCCESS ? VK_ERROR_INITIALIZATION_FAILED : pr, "creating the command pool")
            throw SmeltError("Vulkan: no queue")
        }
        queue = q
        commandPool = pool
        var mem = VkPhysicalDeviceMemoryProperties()
        vk.getPhysicalDeviceMemoryProperties(physical, &mem)
        memoryProperties = mem
    }

    deinit {
        _ = vkd.deviceWaitIdle(device)
        vkd.destroyCommandPool(device, commandPool, nil)
        vkd.destroyDevice(device, nil)
    }

    /// Largest range one storage-buffer binding may cover.
    public var maxBindingBytes: Int { Int(info.maxStorageBufferRange) }

    /// A host-visible, host-coherent storage buffer of `bytes` bytes, mapped.
    public func buffer(bytes: Int) throws -> GPUBuffer { try GPUBuffer(device: self, bytes: max(bytes, 16)) }

    /// A compute pipeline for SPIR-V `code` with `bindings` storage buffers and `pushBytes`
    /// of push constants.
    /// `hardwareOps` sets specialization constant 0 (the shaders' HW_OPS debug switch).
    public func pipeline(name: String, spirv code: [UInt8], bindings: Int, pushBytes: Int,
                         hardwareOps: Bool = false) throws -> GPUPipeline {
        try GPUPipeline(device: self, name: name, spirv: code, bindings: bindings, pushBytes: pushBytes,
                        hardwareOps: hardwareOps)
    }

    func memoryType(bits: UInt32, want: UInt32, prefer: UInt32) -> UInt32? {
        var preferred: UInt32? = nil, fallback: UInt32? = nil
        withUnsafeBytes(of: memoryProperties.memoryTypes) { raw in
            let types = raw.bindMemory(to: VkMemoryType.self)
            for i in 0..<Int(memoryProperties.memoryTypeCount) where bits & (1 << UInt32(i)) != 0 {
                let f = types[i].propertyFlags
                if f & prefer == prefer && preferred == nil { preferred = UInt32(i) }
                if f & want == want && fallback == nil { fallback = UInt32(i) }
            }
        }
        return preferred ?? fallback
    }

    /// A recorded command buffer and its fence: one slot of work in flight.
    public func makeSlot() throws -> GPUSlot { try GPUSlot(device: self) }
}

/// A buffer in host-visible memory, mapped for the life of the object.
public final class GPUBuffer: @unchecked Sendable {
    let device: GPUDevice
    let buffer: VkBuffer
    let memory: VkDeviceMemory
    /// The mapped bytes.
    public let contents: UnsafeMutableRawPointer
    public let bytes: Int

    init(device: GPUDevice, bytes: Int) throws {
        self.device = device
        self.bytes = bytes
        let vkd = device.vkd
        var info = VkBufferCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        info.size = VkDeviceSize(bytes)
        info.usage = VkBufferUsageFlags(VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue)
        info.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var b: VkBuffer? = nil
        try vkCheck(vkd.createBuffer(device.device, &info, nil, &b), "creating a buffer of \(bytes) bytes")
        guard let b else { throw SmeltError("Vulkan: creating a buffer returned none") }
        var req = VkMemoryRequirements()
        vkd.getBufferMemoryRequirements(device.device, b, &req)
        let want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        guard let type = device.memoryType(bits: req.memoryTypeBits, want: want,
                                           prefer: want | VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue) else {
            vkd.destroyBuffer(device.device, b, nil)
            throw SmeltError("Vulkan device \(device.info.name) has no host-visible memory for storage buffers")
        }
        var alloc = VkMemoryAllocateInfo()
        alloc.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        alloc.allocationSize = req.size
        alloc.memoryTypeIndex = type
        var m: VkDeviceMemory? = nil
        let ar = vkd.allocateMemory(device.device, &alloc, nil, &m)
        guard ar == VK_SUCCESS, let m else {
            vkd.destroyBuffer(device.device, b, nil)
            try vkCheck(ar == VK_SUCCESS ? VK_ERROR_OUT_OF_DEVICE_MEMORY : ar, "allocating \(bytes) bytes of GPU memory")
            throw SmeltError("Vulkan: allocation returned no memory")
        }
        var mapped: UnsafeMutableRawPointer? = nil
        let br = vkd.bindBufferMemory(device.device, b, m, 0)
        let mr = br == VK_SUCCESS ? vkd.mapMemory(device.device, m, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &mapped) : br
        guard mr == VK_SUCCESS, let mapped else {
            vkd.freeMemory(device.device, m, nil)
            vkd.destroyBuffer(device.device, b, nil)
            try vkCheck(mr == VK_SUCCESS ? VK_ERROR_MEMORY_MAP_FAILED : mr, "mapping a buffer of \(bytes) bytes")
            throw SmeltError("Vulkan: mapping returned no pointer")
        }
        buffer = b
        memory = m
        contents = mapped
    }

    deinit {
        device.vkd.destroyBuffer(device.device, buffer, nil)
        device.vkd.freeMemory(device.device, memory, nil)
    }
}

/// A compute pipeline: shader module, descriptor layout (storage buffers 0..<bindings),
/// push constants, and a small pool of descriptor sets.
public final class GPUPipeline: @unchecked Sendable {
    let device: GPUDevice
    public let name: String
    let bindings: Int
    let pushBytes: Int
    let setLayout: VkDescriptorSetLayout
    let layout: VkPipelineLayout
    let pipeline: VkPipeline

    init(device: GPUDevice, name: String, spirv code: [UInt8], bindings: Int, pushBytes: Int, hardwareOps: Bool) throws {
        self.device = device
        self.name = name
        self.bindings = bindings
        self.pushBytes = pushBytes
        let vkd = device.vkd, dev = device.device
        guard code.count % 4 == 0, code.count >= 20, code.prefix(4).elementsEqual([0x03, 0x02, 0x23, 0x07]) else {
            throw SmeltError("shader \(name): not SPIR-V (\(code.count) bytes)")
        }
        var module: VkShaderModule? = nil
        let mr: VkResult = code.withUnsafeBytes { raw in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = code.count
            info.pCode = raw.bindMemory(to: UInt32.self).baseAddress
            return vkd.createShaderModule(dev, &info, nil, &module)
        }
        try vkCheck(mr, "loading shader \(name)")
        guard let module else { throw SmeltError("Vulkan: shader \(name) gave no module") }
        defer { vkd.destroyShaderModule(dev, module, nil) }

        var binds = (0..<bindings).map { i -> VkDescriptorSetLayoutBinding in
            var b = VkDescriptorSetLayoutBinding()
            b.binding = UInt32(i)
            b.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            b.descriptorCount = 1
            b.stageFlags = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
            return b
        }
        var sl: VkDescriptorSetLayout? = nil
        let slr: VkResult = binds.withUnsafeMutableBufferPointer { bp in
            var info = VkDescriptorSetLayoutCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
            info.bindingCount = UInt32(bindings)
            info.pBindings = UnsafePointer(bp.baseAddress)
            return vkd.createDescriptorSetLayout(dev, &info, nil, &sl)
        }
        try vkCheck(slr, "creating the descriptor layout of \(name)")
        guard let sl else { throw SmeltError("Vulkan: no descriptor layout") }
        var range = VkPushConstantRange()
        range.stageFlags = VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue)
        range.size = UInt32(pushBytes)
        var pl: VkPipelineLayout? = nil
        var slOpt: VkDescriptorSetLayout? = sl
        let plr: VkResult = withUnsafePointer(to: &slOpt) { slp in
            withUnsafePointer(to: &range) { rp in
                var info = VkPipelineLayoutCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
                info.setLayoutCount = 1
                info.pSetLayouts = slp
                info.pushConstantRangeCount = pushBytes > 0 ? 1 : 0
                info.pPushConstantRanges = pushBytes > 0 ? rp : nil
                return vkd.createPipelineLayout(dev, &info, nil, &pl)
            }
        }
        guard plr == VK_SUCCESS, let pl else {
            vkd.destroyDescriptorSetLayout(dev, sl, nil)
            try vkCheck(plr == VK_SUCCESS ? VK_ERROR_INITIALIZATION_FAILED : plr, "creating the pipeline layout of \(name)")
            throw SmeltError("Vulkan: no pipeline layout")
        }
        var p: VkPipeline? = nil
        var hw = VkBool32(hardwareOps ? VK_TRUE : VK_FALSE)
        var entryMap = VkSpecializationMapEntry(constantID: 0, offset: 0, size: 4)
        let pr: VkResult = "main".withCString { entry in
            withUnsafePointer(to: &hw) { hwp in
                withUnsafePointer(to: &entryMap) { mp in
                    var spec = VkSpecializationInfo(mapEntryCount: 1, pMapEntries: mp, dataSize: 4,
                                                    pData: UnsafeRawPointer(hwp))
                    return withUnsafePointer(to: &spec) { sp in
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        info.stage.module = module
                        info.stage.pName = entry
                        info.stage.pSpecializationInfo = sp
                        info.layout = pl
                        return vkd.createComputePipelines(dev, nil, 1, &info, nil, &p)
                    }
                }
            }
        }
        guard pr == VK_SUCCESS, let p else {
            vkd.destroyPipelineLayout(dev, pl, nil)
            vkd.destroyDescriptorSetLayout(dev, sl, nil)
            try vkCheck(pr == VK_SUCCESS ? VK_ERROR_INITIALIZATION_FAILED : pr, "compiling shader \(name) for the device")
            throw SmeltError("Vulkan: no pipeline")
        }
        setLayout = sl
        layout = pl
        pipeline = p
    }

    deinit {
        device.vkd.destroyPipeline(device.device, pipeline, nil)
        device.vkd.destroyPipelineLayout(device.device, layout, nil)
        device.vkd.destroyDescriptorSetLayout(device.device, setLayout, nil)
    }
}

/// One unit of work in flight: a command buffer, its fence and its descriptor sets.
/// `record` a few dispatches, `submit`, then `wait` before touching the buffers again.
public final class GPUSlot: @unchecked Sendable {
    let device: GPUDevice
    let cmd: VkCommandBuffer
    let fence: VkFence
    let pool: VkDescriptorPool
    static let maxSets: UInt32 = 16
    private var recording = false
    private var pending = false

    init(device: GPUDevice) throws {
        self.device = device
        let vkd = device.vkd, dev = device.device
        var ai = VkCommandBufferAllocateInfo()
        ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        ai.commandPool = device.commandPool
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        ai.commandBufferCount = 1
        var c: VkCommandBuffer? = nil
        try vkCheck(vkd.allocateCommandBuffers(dev, &ai, &c), "allocating a command buffer")
        var fi = VkFenceCreateInfo()
        fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var f: VkFence? = nil
        try vkCheck(vkd.createFence(dev, &fi, nil, &f), "creating a fence")
        var size = VkDescriptorPoolSize()
        size.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        size.descriptorCount = Self.maxSets * 8
        var p: VkDescriptorPool? = nil
        let pr: VkResult = withUnsafePointer(to: &size) { sp in
            var pi = VkDescriptorPoolCreateInfo()
            pi.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
            pi.maxSets = Self.maxSets
            pi.poolSizeCount = 1
            pi.pPoolSizes = sp
            return vkd.createDescriptorPool(dev, &pi, nil, &p)
        }
        guard let c, let f, pr == VK_SUCCESS, let p else {
            if let f { vkd.destroyFence(dev, f, nil) }
            try vkCheck(pr, "creating a descriptor pool")
            throw SmeltError("Vulkan: no command buffer")
        }
        cmd = c
        fence = f
        pool = p
    }

    deinit {
        if pending { _ = try? wait() }
        device.vkd.destroyDescriptorPool(device.device, pool, nil)
        device.vkd.destroyFence(device.device, fence, nil)
    }

    private func begin() throws {
        if recording { return }
        let vkd = device.vkd
        try vkCheck(vkd.resetDescriptorPool(device.device, pool, 0), "resetting descriptors")
        try vkCheck(vkd.resetCommandBuffer(cmd, 0), "resetting a command buffer")
        var bi = VkCommandBufferBeginInfo()
        bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        bi.flags = VkCommandBufferUsageFlags(VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue)
        try vkCheck(vkd.beginCommandBuffer(cmd, &bi), "beginning a command buffer")
        recording = true
    }

    /// Records one dispatch of `groups` workgroups of `pipeline` over `buffers` (binding i =
    /// buffers[i], each range (offset, bytes)) with `push` as push constants. Dispatches
    /// recorded in the same slot run in order (a barrier separates them).
    public func dispatch(_ pipeline: GPUPipeline, buffers: [(GPUBuffer, Int, Int)], push: [UInt32],
                         groups: Int) throws {
        guard buffers.count == pipeline.bindings, push.count * 4 == pipeline.pushBytes else {
            throw SmeltError("shader \(pipeline.name): \(buffers.count) buffers / \(push.count * 4) push bytes given, "
                             + "\(pipeline.bindings) / \(pipeline.pushBytes) expected")
        }
        guard groups > 0 else { return }
        let maxGroups = Int(device.info.maxComputeWorkGroupCountX)
        guard groups <= maxGroups else {
            throw SmeltError("shader \(pipeline.name): \(groups) workgroups exceed the device's limit \(maxGroups)")
        }
        try begin()
        let vkd = device.vkd, dev = device.device
        var set: VkDescriptorSet? = nil
        var layout: VkDescriptorSetLayout? = pipeline.setLayout
        let ar: VkResult = withUnsafePointer(to: &layout) { lp in
            var ai = VkDescriptorSetAllocateInfo()
            ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
            ai.descriptorPool = pool
            ai.descriptorSetCount = 1
            ai.pSetLayouts = lp
            return vkd.allocateDescriptorSets(dev, &ai, &set)
        }
        try vkCheck(ar, "allocating descriptors for \(pipeline.name)")
        var infos = buffers.map { b -> VkDescriptorBufferInfo in
            var i = VkDescriptorBufferInfo()
            i.buffer = b.0.buffer
            i.offset = VkDeviceSize(b.1)
            i.range = VkDeviceSize(b.2)
            return i
        }
        infos.withUnsafeMutableBufferPointer { ip in
            var writes = (0..<buffers.count).map { i -> VkWriteDescriptorSet in
                var w = VkWriteDescriptorSet()
                w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                w.dstSet = set
                w.dstBinding = UInt32(i)
                w.descriptorCount = 1
                w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                w.pBufferInfo = UnsafePointer(ip.baseAddress! + i)
                return w
            }
            vkd.updateDescriptorSets(dev, UInt32(writes.count), &writes, 0, nil)
        }
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_HOST_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue)
        vkd.cmdPipelineBarrier(cmd, VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_HOST_BIT.rawValue),
                               VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue), 0, 1, &barrier, 0, nil, 0, nil)
        vkd.cmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.pipeline)
        vkd.cmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &set, 0, nil)
        if !push.isEmpty {
            push.withUnsafeBytes { pb in
                vkd.cmdPushConstants(cmd, pipeline.layout, VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), 0,
                                     UInt32(pb.count), pb.baseAddress)
            }
        }
        vkd.cmdDispatch(cmd, UInt32(groups), 1, 1)
    }

    /// Submits what was recorded (results are visible to the host after `wait`).
    public func submit() throws {
        guard recording else { return }
        let vkd = device.vkd
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_HOST_READ_BIT.rawValue)
        vkd.cmdPipelineBarrier(cmd, VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue),
                               VkPipelineStageFlags(VK_PIPELINE_STAGE_HOST_BIT.rawValue), 0, 1, &barrier, 0, nil, 0, nil)
        try vkCheck(vkd.endCommandBuffer(cmd), "ending a command buffer")
        recording = false
        var c: VkCommandBuffer? = cmd
        let r: VkResult = withUnsafePointer(to: &c) { cp in
            var si = VkSubmitInfo()
            si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            si.commandBufferCount = 1
            si.pCommandBuffers = cp
            return vkd.queueSubmit(device.queue, 1, &si, fence)
        }
        try vkCheck(r, "submitting work")
        pending = true
    }

    /// Waits for the submitted work (no-op when nothing is in flight).
    public func wait() throws {
        guard pending else { return }
        pending = false
        var f: VkFence? = fence
        try vkCheck(device.vkd.waitForFences(device.device, 1, &f, VkBool32(VK_TRUE), UInt64.max), "waiting for the GPU")
        try vkCheck(device.vkd.resetFences(device.device, 1, &f), "resetting a fence")
    }
}
