<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>App</name>
    <message>
        <location filename="../../chatapp/ui/app.py" line="24"/>
        <source>chatapp is already open in another window: conversations are shared and saved by both; settings changed here may be overwritten by the other window.</source>
        <translation>chatapp 已在另一个窗口中打开：两个窗口共享并保存对话；在这里更改的设置可能会被另一个窗口覆盖。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/app.py" line="58"/>
        <source>{name} (recent)</source>
        <translation>{name}（最近使用）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/app.py" line="60"/>
        <source>{name} — sees images</source>
        <translation>{name} — 可识图</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/app.py" line="86"/>
        <source>Dismiss</source>
        <translation>关闭</translation>
    </message>
</context>
<context>
    <name>ChatController</name>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="91"/>
        <source>stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="93"/>
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="95"/>
        <source>cut at the token limit</source>
        <translation>已达词元上限</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="97"/>
        <source>{n} tokens · {speed:.1f} tok/s</source>
        <translation>{n} 个词元 · {speed:.1f} 词元/秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="100"/>
        <source>{n} passages left out (context full)</source>
        <translation>{n} 段未放入（上下文已满）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="257"/>
        <source>Could not read the document libraries: {message}</source>
        <translation>无法读取文档库：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="320"/>
        <location filename="../../chatapp/ui/chat_controller.py" line="477"/>
        <source>writing…</source>
        <translation>正在输出…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="361"/>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="380"/>
        <source>Conversation deleted.</source>
        <translation>对话已删除。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="396"/>
        <source>Exported to {path}</source>
        <translation>已导出到 {path}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="402"/>
        <source>{title} (imported)</source>
        <translation>{title}（导入）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="405"/>
        <source>Imported “{title}” from {path}</source>
        <translation>已从 {path} 导入“{title}”</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="427"/>
        <source>This model cannot see images ({model}); your message is kept.</source>
        <translation>此模型无法查看图片（{model}）；您的消息已保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="431"/>
        <source>Wait for the comparison to finish; your message is kept.</source>
        <translation>请等待对比完成；您的消息已保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="434"/>
        <source>The model is not loaded yet; your message is kept.</source>
        <translation>模型尚未加载；你的消息已保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="436"/>
        <source>Image</source>
        <translation>图片</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="540"/>
        <source>This model cannot see images ({model}); Edit again and remove the message&apos;s images, or load a vision model.</source>
        <translation>此模型无法查看图片（{model}）；请再次编辑并移除消息中的图片，或加载视觉模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="554"/>
        <source>The earlier version and its {n} later messages are kept: ‹ on the message shows them.</source>
        <translation>较早的版本及其后的 {n} 条消息都已保留：点消息上的 ‹ 即可查看。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="572"/>
        <source>The edit was undone.</source>
        <translation>已撤销编辑。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="613"/>
        <source>Version deleted (1 message).</source>
        <translation>已删除该版本（1 条消息）。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="613"/>
        <source>Version deleted ({n} messages).</source>
        <translation>已删除该版本（{n} 条消息）。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="696"/>
        <source>Your messages contain chat-control markers (such as &lt;|im_end|&gt;); the model read them as plain text, so they could not open or close a turn.</source>
        <translation>您的消息包含对话控制标记（例如 &lt;|im_end|&gt;）；模型将其作为普通文本读取，因此它们无法开启或结束一轮对话。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="700"/>
        <source>This model&apos;s chat template has no system turn: the system prompt was put at the start of the first message.</source>
        <translation>此模型的对话模板没有系统轮次：系统提示已放在第一条消息的开头。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="704"/>
        <source>{n} earlier messages did not fit the context and were left out of this reply.</source>
        <translation>有 {n} 条较早的消息超出了上下文长度，本次回复未包含它们。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="720"/>
        <source>failed: {message}</source>
        <translation>失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_controller.py" line="722"/>
        <source>The reply failed: {message}</source>
        <translation>回复失败：{message}</translation>
    </message>
    <message>
        <source>{n} later messages were removed. Undo puts them back.</source>
        <translation type="obsolete">已删除后面的 {n} 条消息。撤销可以恢复它们。</translation>
    </message>
</context>
<context>
    <name>ChatHeader</name>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="34"/>
        <source>{total:.2f} GiB (weights {weights:.2f}, KV cache {kv:.2f}, working memory {work:.2f})</source>
        <translation>{total:.2f} GiB（权重 {weights:.2f}，KV 缓存 {kv:.2f}，工作内存 {work:.2f}）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="77"/>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="78"/>
        <source>The model to chat with, and the memory it needs</source>
        <translation>用于对话的模型，及其所需内存</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="86"/>
        <source>Load</source>
        <translation>加载</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="87"/>
        <source>Load the selected model</source>
        <translation>加载所选模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="90"/>
        <source>Open…</source>
        <translation>打开…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="91"/>
        <source>Open another model</source>
        <translation>打开其他模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="94"/>
        <source>Open GGUF…</source>
        <translation>打开 GGUF…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="95"/>
        <source>Open Hugging Face folder…</source>
        <translation>打开 Hugging Face 文件夹…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="100"/>
        <location filename="../../chatapp/ui/chat_header.py" line="135"/>
        <source>System prompt</source>
        <translation>系统提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="104"/>
        <source>Show the conversation&apos;s system prompt</source>
        <translation>显示本对话的系统提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="112"/>
        <source>No model loaded</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="123"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="124"/>
        <source>Cancel loading the model</source>
        <translation>取消加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="136"/>
        <source>How the model should answer in this conversation</source>
        <translation>模型在本对话中应如何回答</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="172"/>
        <source>System prompt: {summary}</source>
        <translation>系统提示词：{summary}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="173"/>
        <source>System prompt: none</source>
        <translation>系统提示词：无</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="174"/>
        <source>This conversation has no system prompt.</source>
        <translation>本对话没有系统提示词。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="226"/>
        <source>{name} · {memory:.2f} GiB</source>
        <translation>{name} · {memory:.2f} GiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="227"/>
        <source>{name} · {memory:.2f} GiB, will not fit</source>
        <translation>{name} · {memory:.2f} GiB，内存不足</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="235"/>
        <source>Before loading: {name}, {params:.0f}M parameters, needs about {memory}</source>
        <translation>加载前：{name}，{params:.0f}M 参数，约需 {memory}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="238"/>
        <source>; {free:.1f} GiB free</source>
        <translation>；可用 {free:.1f} GiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="240"/>
        <source>. It will not fit: choose a shorter context length or a smaller model.</source>
        <translation>。内存不足：请选择更短的上下文长度或更小的模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="250"/>
        <source>This model cannot be opened: {message}</source>
        <translation>无法打开此模型：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="267"/>
        <source>Open GGUF model</source>
        <translation>打开 GGUF 模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="267"/>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="272"/>
        <source>Open Hugging Face model folder</source>
        <translation>打开 Hugging Face 模型文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="322"/>
        <source>Loading</source>
        <translation>正在加载</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="323"/>
        <source>Loading {name}…</source>
        <translation>正在加载 {name}…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="333"/>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="347"/>
        <source>{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. Memory: {memory}</source>
        <translation>{name}：{params:.0f}M 参数，{dtype}，运行于 {device}，上下文 {ctx}，加载用时 {secs:.1f} 秒。内存：{memory}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="352"/>
        <source>Adapter in use: {name}.</source>
        <translation>正在使用的适配器：{name}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="358"/>
        <source>Loading {name} was cancelled.</source>
        <translation>已取消加载 {name}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_header.py" line="364"/>
        <source>Could not load {spec}: {message}</source>
        <translation>无法加载 {spec}：{message}</translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="38"/>
        <location filename="../../chatapp/ui/chat_view.py" line="92"/>
        <source>Copy code</source>
        <translation>复制代码</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="39"/>
        <source>Copy code block</source>
        <translation>复制代码块</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="69"/>
        <source>code</source>
        <translation>代码</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="92"/>
        <location filename="../../chatapp/ui/chat_view.py" line="291"/>
        <source>Copied</source>
        <translation>已复制</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="125"/>
        <source>You</source>
        <translation>你</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="125"/>
        <source>Assistant</source>
        <translation>助手</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="135"/>
        <source>Previous version</source>
        <translation>上一个版本</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="141"/>
        <source>Next version</source>
        <translation>下一个版本</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="144"/>
        <location filename="../../chatapp/ui/chat_view.py" line="439"/>
        <source>Delete version</source>
        <translation>删除此版本</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="145"/>
        <source>Delete this version and what follows it</source>
        <translation>删除此版本及其后的消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="150"/>
        <location filename="../../chatapp/ui/chat_view.py" line="291"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="151"/>
        <source>Copy message</source>
        <translation>复制消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="154"/>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="155"/>
        <source>Edit message and resend</source>
        <translation>编辑消息并重新发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="159"/>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="160"/>
        <source>Regenerate reply</source>
        <translation>重新生成回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="164"/>
        <source>Continue</source>
        <translation>继续</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="165"/>
        <source>Continue the reply where it stopped</source>
        <translation>从中断处继续回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="170"/>
        <source>What the model saw</source>
        <translation>模型看到的内容</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="171"/>
        <source>Show the exact prompt of this reply</source>
        <translation>显示此回复的完整提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="176"/>
        <source>Tokens</source>
        <translation>词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="177"/>
        <source>Colour each token by its probability</source>
        <translation>按概率为每个词元着色</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="303"/>
        <source>Edited message</source>
        <translation>编辑后的消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="305"/>
        <source>Saving starts a new version of this message; the {n} later messages stay with the earlier version (&lt; &gt; on the message switches).</source>
        <translation>保存会为这条消息新建一个版本；其后的 {n} 条消息留在较早的版本中（用消息上的 &lt; &gt; 切换）。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="312"/>
        <source>Save &amp;&amp; resend</source>
        <translation>保存 &amp;&amp; 重新发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="313"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="315"/>
        <source>Add image…</source>
        <translation>添加图片…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="379"/>
        <source>Conversation</source>
        <translation>对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="393"/>
        <source>Send a message to start the conversation.</source>
        <translation>发送一条消息，开始对话。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="433"/>
        <source>Delete this version of the message? The other versions stay.</source>
        <translation>删除该消息的这个版本？其他版本会保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="435"/>
        <source>Delete this version of the message and the message after it? The other versions stay.</source>
        <translation>删除该消息的这个版本及其后的一条消息？其他版本会保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="437"/>
        <source>Delete this version of the message and the {n} messages after it? The other versions stay.</source>
        <translation>删除这条消息的此版本及其后的 {n} 条消息？其他版本会保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="458"/>
        <source>Add images</source>
        <translation>添加图片</translation>
    </message>
    <message>
        <source>Saving removes the {n} later messages of this conversation (Undo puts them back).</source>
        <translation type="obsolete">保存会删除此对话中后面的 {n} 条消息（撤销可以恢复）。</translation>
    </message>
</context>
<context>
    <name>CompareView</name>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="45"/>
        <source>{pane}: source</source>
        <translation>{pane}：来源</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="78"/>
        <source>Side by side</source>
        <translation>并排比较</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="85"/>
        <source>One prompt, one seed and the same sampling settings, answered by two sources at once.</source>
        <translation>同一个提示、同一个种子和相同的采样设置，由两个来源同时回答。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="89"/>
        <source>A question about your documents</source>
        <translation>关于你的文档的问题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="90"/>
        <source>Prompt to compare</source>
        <translation>用于对比的提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="94"/>
        <location filename="../../chatapp/ui/compare_view.py" line="96"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="97"/>
        <source>Both replies use this seed, so the difference comes from their sources.</source>
        <translation>两个回复使用同一个种子，因此差异来自它们的来源。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="100"/>
        <source>Compare</source>
        <translation>对比</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="101"/>
        <source>Generate in both panes</source>
        <translation>在两个窗格中生成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="103"/>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="104"/>
        <source>Stop both replies</source>
        <translation>停止两个回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="108"/>
        <source>Left</source>
        <translation>左</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="108"/>
        <source>Right</source>
        <translation>右</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="116"/>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="117"/>
        <source>Close the comparison</source>
        <translation>关闭对比</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="149"/>
        <source>Base model (adapter off)</source>
        <translation>基础模型（关闭适配器）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="151"/>
        <source>Adapter: {name}</source>
        <translation>适配器：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="153"/>
        <source>Model: {name}</source>
        <translation>模型：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="154"/>
        <source>Another model…</source>
        <translation>其他模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="192"/>
        <source>Choose a model</source>
        <translation>选择模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="193"/>
        <source>Models (*.gguf config.json)</source>
        <translation>模型 (*.gguf config.json)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="216"/>
        <source>Checking whether {name} fits beside the loaded model…</source>
        <translation>正在检查 {name} 能否与已加载的模型同时放入内存…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="228"/>
        <source>{name} fits beside the loaded model: it needs {need} GiB and {free} GiB is free. It is loaded for the comparison and released afterwards.</source>
        <translation>{name} 可以与已加载的模型同时放入内存：需要 {need} GiB，可用 {free} GiB。它只为这次比较加载，之后释放。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="231"/>
        <source>{name} does not fit beside the loaded model: it needs {need} GiB and {free} GiB is free. Compare adapters of the loaded model instead, or choose a smaller model.</source>
        <translation>{name} 无法与已加载的模型同时放入内存：需要 {need} GiB，可用 {free} GiB。请改为比较已加载模型的适配器，或选择更小的模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="240"/>
        <source>{name} cannot be compared: {message}</source>
        <translation>无法比较 {name}：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="281"/>
        <source>Stopping…</source>
        <translation>正在停止…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="288"/>
        <source>Loading the other model, then generating…</source>
        <translation>正在加载另一个模型，然后生成…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="289"/>
        <source>Generating…</source>
        <translation>正在生成…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="297"/>
        <source>Failed: {message}</source>
        <translation>失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="321"/>
        <location filename="../../chatapp/ui/compare_view.py" line="321"/>
        <source>finished</source>
        <translation>已完成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="321"/>
        <source>token limit</source>
        <translation>达到词元上限</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="322"/>
        <source>stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="326"/>
        <source>{tokens} tokens, {how}</source>
        <translation>{tokens} 个词元，{how}</translation>
    </message>
    <message>
        <source>{tokens} tokens, {speed:.1f} tokens/s, {how}</source>
        <translation type="obsolete">{tokens} 个词元，{speed:.1f} 词元/秒，{how}</translation>
    </message>
    <message>
        <source>Compare base and fine-tuned model</source>
        <translation type="obsolete">对比基础模型与微调模型</translation>
    </message>
    <message>
        <source>No adapter chosen</source>
        <translation type="obsolete">未选择适配器</translation>
    </message>
    <message>
        <source>Both replies use this seed, so the difference comes from the adapter.</source>
        <translation type="obsolete">两个回复使用同一个随机种子，因此差异来自适配器。</translation>
    </message>
    <message>
        <source>Generate with both models</source>
        <translation type="obsolete">用两个模型分别生成</translation>
    </message>
    <message>
        <source>Base model</source>
        <translation type="obsolete">基础模型</translation>
    </message>
    <message>
        <source>Fine-tuned</source>
        <translation type="obsolete">微调后</translation>
    </message>
    <message>
        <source>Fine-tuned: {name}</source>
        <translation type="obsolete">微调后：{name}</translation>
    </message>
</context>
<context>
    <name>Composer</name>
    <message>
        <location filename="../../chatapp/ui/composer.py" line="68"/>
        <source>Documents for this conversation</source>
        <translation>此对话使用的文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/composer.py" line="69"/>
        <source>Replies in this conversation use passages from the chosen document library</source>
        <translation>此对话中的回复会引用所选文档库中的段落</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/composer.py" line="79"/>
        <source>No documents</source>
        <translation>不使用文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/composer.py" line="81"/>
        <source>Documents: {name}</source>
        <translation>文档：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/composer.py" line="83"/>
        <source>{name} (missing)</source>
        <translation>{name}（已不存在）</translation>
    </message>
</context>
<context>
    <name>ConversationList</name>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="29"/>
        <location filename="../../chatapp/ui/conversation_list.py" line="30"/>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="32"/>
        <source>Import…</source>
        <translation>导入…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="33"/>
        <source>Import a conversation from JSON</source>
        <translation>从 JSON 文件导入对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="39"/>
        <location filename="../../chatapp/ui/conversation_list.py" line="40"/>
        <source>Search conversations</source>
        <translation>搜索对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="45"/>
        <source>Conversations</source>
        <translation>对话列表</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="54"/>
        <source>No conversation matches this search.</source>
        <translation>没有与此搜索匹配的对话。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="66"/>
        <source>Untitled</source>
        <translation>未命名</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="94"/>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="95"/>
        <source>Export as Markdown…</source>
        <translation>导出为 Markdown…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="96"/>
        <source>Export as JSON…</source>
        <translation>导出为 JSON…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="98"/>
        <source>Delete</source>
        <translation>删除</translation>
    </message>
</context>
<context>
    <name>DocumentsView</name>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="124"/>
        <location filename="../../chatapp/ui/documents_view.py" line="154"/>
        <source>Libraries</source>
        <translation>文档库</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="125"/>
        <source>New library…</source>
        <translation>新建文档库…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="126"/>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="127"/>
        <source>Add files…</source>
        <translation>添加文件…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="128"/>
        <source>Re-index</source>
        <translation>重新索引</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="129"/>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="130"/>
        <source>Embedding model…</source>
        <translation>嵌入模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="131"/>
        <source>Rank passages by meaning too, with a static-embedding model folder (model2vec: config.json, model.safetensors, tokenizer.json)</source>
        <translation>同时按语义为段落排序，使用静态嵌入模型文件夹（model2vec：config.json、model.safetensors、tokenizer.json）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="133"/>
        <source>Words only</source>
        <translation>仅按词语</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="134"/>
        <source>Rank passages by their words alone (no embedding model)</source>
        <translation>仅按词语为段落排序（不使用嵌入模型）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="140"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="145"/>
        <source>Search the library (Enter)</source>
        <translation>搜索文档库（回车）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="146"/>
        <source>Search documents</source>
        <translation>搜索文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="148"/>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="148"/>
        <source>Heading</source>
        <translation>标题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="148"/>
        <source>Passage</source>
        <translation>段落</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="191"/>
        <source>{name} ({files} files)</source>
        <translation>{name}（{files} 个文件）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="195"/>
        <source>Embedding model: {folder} ({vectors} of {chunks} passages embedded)</source>
        <translation>嵌入模型：{folder}（已嵌入 {vectors}/{chunks} 个段落）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="224"/>
        <source>Removed {name} (the files were not touched).</source>
        <translation>已移除 {name}（文件本身未改动）。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="241"/>
        <source>A static-embedding model folder for {name}</source>
        <translation>为 {name} 选择静态嵌入模型文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="246"/>
        <source>New library</source>
        <translation>新建文档库</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="246"/>
        <source>Name:</source>
        <translation>名称：</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="248"/>
        <source>A folder for {name}</source>
        <translation>为 {name} 选择文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="254"/>
        <source>Add a folder</source>
        <translation>添加文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="260"/>
        <source>Add files</source>
        <translation>添加文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="267"/>
        <source>Wait for {name} to finish indexing.</source>
        <translation>请等待 {name} 索引完成。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="274"/>
        <source>Indexing {name}…</source>
        <translation>正在索引 {name}…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="280"/>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="287"/>
        <source>Embedding passages: {done} of {total}</source>
        <translation>正在嵌入段落：{done}/{total}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="289"/>
        <source>Indexing {done} of {total}: {file}</source>
        <translation>正在索引第 {done} 个，共 {total} 个：{file}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="296"/>
        <source>{name}: {summary}</source>
        <translation>{name}：{summary}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="299"/>
        <source>To ask about these documents, choose “{name}” beside the message box in the Chat tab.</source>
        <translation>要就这些文档提问，请在“聊天”标签页的消息框旁选择“{name}”。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="307"/>
        <source>Cannot index {name}: {message}</source>
        <translation>无法索引 {name}：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="338"/>
        <source>No passage matches.</source>
        <translation>没有匹配的段落。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="343"/>
        <source>Search failed: {message}</source>
        <translation>搜索失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="363"/>
        <source>Ranked by words and meaning ({model})</source>
        <translation>按词语和语义排序（{model}）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/documents_view.py" line="366"/>
        <source>Ranked by words</source>
        <translation>按词语排序</translation>
    </message>
</context>
<context>
    <name>ExportProcess</name>
    <message>
        <location filename="../../chatapp/ui/export_process.py" line="39"/>
        <source>a file of that name exists</source>
        <translation>已有同名文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/export_process.py" line="41"/>
        <source>the folder is not empty; choose a new folder name</source>
        <translation>该文件夹不是空的；请填写一个新的文件夹名</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/export_process.py" line="43"/>
        <source>its parent folder {parent} does not exist</source>
        <translation>其上级文件夹 {parent} 不存在</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/export_process.py" line="98"/>
        <source>the export process exited with code {code}</source>
        <translation>导出进程以代码 {code} 退出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/export_process.py" line="104"/>
        <source>could not start {program}</source>
        <translation>无法启动 {program}</translation>
    </message>
</context>
<context>
    <name>FineTuneDiff</name>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="51"/>
        <source>What the fine-tune changed</source>
        <translation>微调改变了什么</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="56"/>
        <source>A reply, any text, or a document opened here</source>
        <translation>一条回复、任意文本，或在此打开的文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="57"/>
        <source>Text to score</source>
        <translation>要评分的文本</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="61"/>
        <source>Open document…</source>
        <translation>打开文档…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="65"/>
        <source>Colour by what the adapter changed</source>
        <translation>按适配器带来的变化着色</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="66"/>
        <source>Colour by surprise, base model</source>
        <translation>按意外程度着色（基础模型）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="67"/>
        <source>Colour by surprise, with the adapter</source>
        <translation>按意外程度着色（使用适配器）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="71"/>
        <source>Score</source>
        <translation>评分</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="73"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="92"/>
        <source>Point at a token to see its log-probability under each model.</source>
        <translation>指向一个词元可查看它在每个模型下的对数概率。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="107"/>
        <source>Open document</source>
        <translation>打开文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="112"/>
        <source>Could not read {path}: {reason}</source>
        <translation>无法读取 {path}：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="127"/>
        <source>Scoring…</source>
        <translation>正在评分…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="144"/>
        <source>Scoring was cancelled.</source>
        <translation>评分已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="145"/>
        <source>Scoring failed: {message}</source>
        <translation>评分失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="156"/>
        <source>{n} tokens. Perplexity: base model {base:.2f}, with the adapter {tuned:.2f}.</source>
        <translation>{n} 个词元。困惑度：基础模型 {base:.2f}，使用适配器 {tuned:.2f}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="159"/>
        <source>{n} tokens. Perplexity {base:.2f}. No adapter is loaded: load one in the Chat tab to see what it changed.</source>
        <translation>{n} 个词元。困惑度 {base:.2f}。尚未加载适配器：请在聊天标签页中加载一个，以查看它改变了什么。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="167"/>
        <source>log p(adapter) − log p(base), in nats:</source>
        <translation>log p(适配器) − log p(基础)，单位为奈特：</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="171"/>
        <source>Probability of each token (low = surprising):</source>
        <translation>每个词元的概率（越低越意外）：</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="182"/>
        <source>“{token}”: base log p {base:.3f} ({p_base}, surprise {bits_base:.2f} bits)</source>
        <translation>“{token}”：基础模型 log p {base:.3f}（{p_base}，意外度 {bits_base:.2f} 比特）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="186"/>
        <source>; adapter log p {tuned:.3f} ({p_tuned}, surprise {bits_tuned:.2f} bits); change {change:+.3f}</source>
        <translation>；适配器 log p {tuned:.3f}（{p_tuned}，意外度 {bits_tuned:.2f} 比特）；变化 {change:+.3f}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/finetune_diff.py" line="212"/>
        <source>wait for the reply to finish (or load a model) first</source>
        <translation>请先等待回复完成（或加载模型）</translation>
    </message>
</context>
<context>
    <name>Images</name>
    <message>
        <location filename="../../chatapp/ui/images.py" line="191"/>
        <source>pasted image</source>
        <translation>粘贴的图片</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="196"/>
        <source>A message can hold {n} images.</source>
        <translation>一条消息最多可包含 {n} 张图片。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="256"/>
        <source>Remove image {name}</source>
        <translation>移除图片 {name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="271"/>
        <source>{model} cannot see images; they will be refused at send.</source>
        <translation>{model} 无法查看图片；发送时将被拒绝。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="272"/>
        <source>The model</source>
        <translation>该模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="275"/>
        <source>{n} of at most {limit} images, {total} context tokens in all</source>
        <translation>{n} 张图片（最多 {limit} 张），共占用 {total} 个上下文词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="280"/>
        <source>counting {n}…</source>
        <translation>正在计算 {n} 张…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="282"/>
        <source>reading {n}…</source>
        <translation>正在读取 {n} 张…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="287"/>
        <source>{n} tokens</source>
        <translation>{n} 个词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="288"/>
        <source>? tokens</source>
        <translation>? 个词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="295"/>
        <source>Images ({patterns})</source>
        <translation>图片 ({patterns})</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="303"/>
        <source>Image</source>
        <translation>图片</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="306"/>
        <source>Loading…</source>
        <translation>正在加载…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/images.py" line="331"/>
        <source>This image cannot be shown: {message}</source>
        <translation>无法显示此图片：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="62"/>
        <source>image</source>
        <translation>图片</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="63"/>
        <source>Show image {name}</source>
        <translation>查看图片 {name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="66"/>
        <location filename="../../chatapp/ui/message_images.py" line="162"/>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="68"/>
        <source>Leave image {name} out of the edited message</source>
        <translation>编辑后的消息不包含图片 {name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="115"/>
        <source>(unreadable)</source>
        <translation>（无法读取）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="143"/>
        <source>An added image is still being read; save again once it shows.</source>
        <translation>新添加的图片仍在读取中；显示出来后请再次保存。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/message_images.py" line="162"/>
        <source>Keep</source>
        <translation>保留</translation>
    </message>
    <message>
        <source>{n} of at most {limit} images, {tokens} context tokens each ({total} in all)</source>
        <translation type="obsolete">{n} 张图片（最多 {limit} 张），每张占用 {tokens} 个上下文词元（共 {total} 个）</translation>
    </message>
</context>
<context>
    <name>LossChart</name>
    <message>
        <location filename="../../chatapp/ui/loss_chart.py" line="79"/>
        <source>Training loss chart</source>
        <translation>训练损失曲线图</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/loss_chart.py" line="180"/>
        <source>The loss appears here once training starts.</source>
        <translation>训练开始后，损失曲线会显示在这里。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/loss_chart.py" line="259"/>
        <source>Training loss</source>
        <translation>训练损失</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/loss_chart.py" line="259"/>
        <source>Validation perplexity (right)</source>
        <translation>验证困惑度（右轴）</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="143"/>
        <source>Message the model (Enter sends, Shift+Enter for a new line)</source>
        <translation>给模型发消息（Enter 发送，Shift+Enter 换行）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="144"/>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="148"/>
        <source>Attach image…</source>
        <translation>附加图片…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="149"/>
        <source>Attach images to the message</source>
        <translation>为消息附加图片</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="150"/>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="151"/>
        <source>Send message</source>
        <translation>发送消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="152"/>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="153"/>
        <source>Stop the reply</source>
        <translation>停止回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="184"/>
        <source>Chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="185"/>
        <source>Train</source>
        <translation>训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="187"/>
        <source>Documents</source>
        <translation>文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="192"/>
        <source>No model</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="198"/>
        <location filename="../../chatapp/ui/main_window.py" line="477"/>
        <source>Undo delete</source>
        <translation>撤销删除</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="199"/>
        <source>Undo</source>
        <translation>撤销</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="283"/>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="284"/>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="285"/>
        <source>Import conversation…</source>
        <translation>导入对话…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="286"/>
        <source>Export conversation as Markdown…</source>
        <translation>将对话导出为 Markdown…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="288"/>
        <source>Export conversation as JSON…</source>
        <translation>将对话导出为 JSON…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="291"/>
        <source>Quit</source>
        <translation>退出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="292"/>
        <source>&amp;Chat</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="293"/>
        <source>Focus message box</source>
        <translation>聚焦到消息框</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="294"/>
        <source>Stop reply</source>
        <translation>停止回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="295"/>
        <source>Regenerate reply</source>
        <translation>重新生成回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="296"/>
        <source>Continue reply</source>
        <translation>继续回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="303"/>
        <source>Rename conversation</source>
        <translation>重命名对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="304"/>
        <source>Delete conversation</source>
        <translation>删除对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="306"/>
        <source>What the fine-tune changed…</source>
        <translation>微调改变了什么…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="307"/>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="308"/>
        <source>Conversation list</source>
        <translation>对话列表</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="309"/>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="311"/>
        <source>Show or hide the conversations (Ctrl+B)</source>
        <translation>显示或隐藏对话列表（Ctrl+B）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="312"/>
        <source>Open or close the settings (Ctrl+,)</source>
        <translation>打开或关闭设置（Ctrl+,）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="318"/>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="319"/>
        <location filename="../../chatapp/ui/main_window.py" line="322"/>
        <source>About chatapp</source>
        <translation>关于 chatapp</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="323"/>
        <source>chatapp {version}

Chat with a language model on your own machine, and teach it your own documents.</source>
        <translation>chatapp {version}

在你自己的电脑上与语言模型对话，并用你自己的文档训练它。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="345"/>
        <source>adapter {name}</source>
        <translation>适配器 {name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="349"/>
        <source>Loading model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="361"/>
        <source>context {used}/{limit}</source>
        <translation>上下文 {used}/{limit}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="366"/>
        <source>{speed:.1f} tok/s</source>
        <translation>{speed:.1f} 词元/秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="407"/>
        <source>The language changes the next time chatapp starts.</source>
        <translation>下次启动 chatapp 时将切换语言。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="427"/>
        <source>Weights: {reason}</source>
        <translation>权重：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="440"/>
        <source>Model load failed: {message}</source>
        <translation>模型加载失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="477"/>
        <source>Undo edit</source>
        <translation>撤销编辑</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="495"/>
        <source>Export conversation</source>
        <translation>导出对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="501"/>
        <source>Export failed</source>
        <translation>导出失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="505"/>
        <source>Import conversation</source>
        <translation>导入对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="505"/>
        <source>JSON (*.json)</source>
        <translation>JSON 文件 (*.json)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="511"/>
        <source>Import failed</source>
        <translation>导入失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="518"/>
        <source>The images are still being read; your message is kept.</source>
        <translation>图片仍在读取中；您的消息已保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="523"/>
        <source>This model cannot see images ({model}); remove them or load a vision model.</source>
        <translation>此模型无法查看图片（{model}）；请移除图片或加载视觉模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="524"/>
        <source>no model</source>
        <translation>无模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="534"/>
        <source>Attach images</source>
        <translation>附加图片</translation>
    </message>
    <message>
        <source>Stop the reply before switching models.</source>
        <translation type="obsolete">请先停止回复，再切换模型。</translation>
    </message>
    <message>
        <source>Loading</source>
        <translation type="obsolete">正在加载</translation>
    </message>
    <message>
        <source>Loading {spec}…</source>
        <translation type="obsolete">正在加载 {spec}…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation type="obsolete">正在取消…</translation>
    </message>
    <message>
        <source>{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. Memory: {memory}</source>
        <translation type="obsolete">{name}：{params:.0f}M 参数，{dtype}，运行于 {device}，上下文 {ctx}，加载用时 {secs:.1f} 秒。内存：{memory}</translation>
    </message>
    <message>
        <source> The previous model ({name}) is still loaded.</source>
        <translation type="obsolete"> 之前的模型（{name}）仍保持加载。</translation>
    </message>
    <message>
        <source>Loading {spec} was cancelled.</source>
        <translation type="obsolete">已取消加载 {spec}。</translation>
    </message>
    <message>
        <source>Could not load {spec}: {message}</source>
        <translation type="obsolete">无法加载 {spec}：{message}</translation>
    </message>
    <message>
        <source>writing…</source>
        <translation type="obsolete">正在输出…</translation>
    </message>
    <message>
        <source>stopped</source>
        <translation type="obsolete">已停止</translation>
    </message>
    <message>
        <source>failed</source>
        <translation type="obsolete">失败</translation>
    </message>
    <message>
        <source>cut at the token limit</source>
        <translation type="obsolete">已达词元上限</translation>
    </message>
    <message>
        <source>Conversation deleted.</source>
        <translation type="obsolete">对话已删除。</translation>
    </message>
    <message>
        <source>Exported to {path}</source>
        <translation type="obsolete">已导出到 {path}</translation>
    </message>
    <message>
        <source>The model is not loaded yet; your message is kept.</source>
        <translation type="obsolete">模型尚未加载；你的消息已保留。</translation>
    </message>
    <message>
        <source>{n} tokens · {speed:.1f} tok/s</source>
        <translation type="obsolete">{n} 个词元 · {speed:.1f} 词元/秒</translation>
    </message>
    <message>
        <source>{n} earlier messages did not fit the context and were left out of this reply.</source>
        <translation type="obsolete">有 {n} 条较早的消息超出了上下文长度，本次回复未包含它们。</translation>
    </message>
    <message>
        <source>failed: {message}</source>
        <translation type="obsolete">失败：{message}</translation>
    </message>
    <message>
        <source>The reply failed: {message}</source>
        <translation type="obsolete">回复失败：{message}</translation>
    </message>
    <message>
        <source>Loading {name}…</source>
        <translation type="obsolete">正在加载 {name}…</translation>
    </message>
    <message>
        <source>Adapter in use: {name}.</source>
        <translation type="obsolete">正在使用的适配器：{name}。</translation>
    </message>
    <message>
        <source>Loading {name} was cancelled.</source>
        <translation type="obsolete">已取消加载 {name}。</translation>
    </message>
</context>
<context>
    <name>ModelController</name>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="36"/>
        <source>Reading the model&apos;s settings</source>
        <translation>正在读取模型配置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="36"/>
        <source>Reading the weights</source>
        <translation>正在读取权重</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="37"/>
        <source>Preparing the tokenizer</source>
        <translation>正在准备分词器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="37"/>
        <source>Putting on the adapter</source>
        <translation>正在加载适配器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="38"/>
        <location filename="../../chatapp/ui/model_controller.py" line="38"/>
        <source>Preparing to chat</source>
        <translation>正在准备对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="39"/>
        <source>Compiling the decode step (minutes the first time, seconds after)</source>
        <translation>正在编译解码步骤（首次需几分钟，之后只需几秒）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="117"/>
        <source>Stop the reply before switching models.</source>
        <translation>请先停止回复，再切换模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="134"/>
        <source>The adapter {path} is no longer there; the model was loaded without it.</source>
        <translation>适配器 {path} 已不存在；模型已在不使用它的情况下加载。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/model_controller.py" line="154"/>
        <source> The previous model ({name}) is still loaded.</source>
        <translation> 之前的模型（{name}）仍保持加载。</translation>
    </message>
    <message>
        <source>Compiling compact kernels (a minute the first time, seconds after)</source>
        <translation type="obsolete">正在编译紧凑权重内核（首次约需一分钟，之后只需几秒）</translation>
    </message>
    <message>
        <source>Ready</source>
        <translation type="obsolete">就绪</translation>
    </message>
</context>
<context>
    <name>ServerPanel</name>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="82"/>
        <source>Load a model first: the server shares the chat&apos;s model.</source>
        <translation>请先加载模型：服务器与聊天共用同一个模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="87"/>
        <source>The window&apos;s event loop is not running.</source>
        <translation>窗口的事件循环没有运行。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="156"/>
        <location filename="../../chatapp/ui/server_panel.py" line="164"/>
        <source>Local API server</source>
        <translation>本地 API 服务器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="165"/>
        <source>Serve the model to other programs (OpenAI API)</source>
        <translation>向其他程序提供模型（OpenAI API）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="172"/>
        <location filename="../../chatapp/ui/server_panel.py" line="188"/>
        <source>Port</source>
        <translation>端口</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="175"/>
        <source>none: any program on this computer may use it</source>
        <translation>无：本机上的任何程序都可以使用</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="176"/>
        <location filename="../../chatapp/ui/server_panel.py" line="189"/>
        <source>API key</source>
        <translation>API 密钥</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="179"/>
        <source>Server address</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="180"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="181"/>
        <source>Copy the server address</source>
        <translation>复制服务器地址</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="190"/>
        <source>Address</source>
        <translation>地址</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="192"/>
        <source>Editors, scripts and agents on this computer can use the chat&apos;s model through the OpenAI API at this address. Requests wait while the chat replies.</source>
        <translation>本机上的编辑器、脚本和智能体可以通过此地址的 OpenAI API 使用聊天的模型。聊天回复时，请求会排队等待。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="216"/>
        <source>Starting…</source>
        <translation>正在启动…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="237"/>
        <source>Serving the chat&apos;s model.</source>
        <translation>正在提供聊天的模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="250"/>
        <source>API request running</source>
        <translation>API 请求正在运行</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/server_panel.py" line="250"/>
        <source>{n} API requests</source>
        <translation>{n} 个 API 请求</translation>
    </message>
</context>
<context>
    <name>SettingsPanel</name>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="29"/>
        <source>Precise</source>
        <translation>精确</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="29"/>
        <source>Balanced</source>
        <translation>均衡</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="29"/>
        <source>Creative</source>
        <translation>创意</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="44"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="49"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="55"/>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="47"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="53"/>
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="51"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="56"/>
        <source>Context length</source>
        <translation>上下文长度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="54"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="57"/>
        <source>CPU threads</source>
        <translation>CPU 线程数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="62"/>
        <source>Weights</source>
        <translation>权重</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="63"/>
        <source>Used the next time a model is loaded.</source>
        <translation>下次加载模型时生效。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="66"/>
        <source>Replies</source>
        <translation>回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="72"/>
        <source>Custom</source>
        <translation>自定义</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="73"/>
        <source>Sampling preset</source>
        <translation>采样预设</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="74"/>
        <source>Precise: focused, repeatable answers. Balanced: the default. Creative: more varied text.</source>
        <translation>精确：专注、可重复的回答。均衡：默认设置。创意：更多样的文字。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="77"/>
        <source>Maximum new tokens</source>
        <translation>最大生成词元数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="78"/>
        <source>Style</source>
        <translation>风格</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="82"/>
        <source>Used for each setting you leave at its default.</source>
        <translation>用于你保留默认值的每项设置。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="85"/>
        <source>Max new tokens</source>
        <translation>最大生成词元数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="87"/>
        <source>Think before answering</source>
        <translation>先思考再回答</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="88"/>
        <source>Let the model think before answering</source>
        <translation>让模型先思考再回答</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="89"/>
        <source>For models that can reason first (such as Qwen3). The reasoning is shown collapsed above the answer and is not sent again with later messages.</source>
        <translation>适用于能先推理的模型（如 Qwen3）。推理过程折叠显示在回答上方，之后的消息不会再次发送它。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="95"/>
        <source>Advanced</source>
        <translation>高级</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="96"/>
        <source>Show the sampling settings</source>
        <translation>显示采样设置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="105"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="115"/>
        <source>Temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="106"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="115"/>
        <source>Top-p</source>
        <translation>Top-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="107"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="116"/>
        <source>Min-p</source>
        <translation>Min-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="108"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="117"/>
        <source>Repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="110"/>
        <source>Off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="111"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="116"/>
        <source>Top-k</source>
        <translation>Top-k</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="113"/>
        <source>Random</source>
        <translation>随机</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="114"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="117"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="123"/>
        <source>Appearance</source>
        <translation>外观</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="126"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="131"/>
        <source>Follow the system</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="126"/>
        <source>Light</source>
        <translation>浅色</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="126"/>
        <source>Dark</source>
        <translation>深色</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="128"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="135"/>
        <source>Theme</source>
        <translation>主题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="133"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="136"/>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="134"/>
        <source>Takes effect the next time chatapp starts.</source>
        <translation>下次启动 chatapp 时生效。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="160"/>
        <source>temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="160"/>
        <source>top-p</source>
        <translation>top-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="160"/>
        <source>top-k</source>
        <translation>top-k</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="161"/>
        <source>min-p</source>
        <translation>min-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="161"/>
        <source>repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="162"/>
        <source>repetition window</source>
        <translation>重复窗口</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="164"/>
        <source>This model recommends: {values}</source>
        <translation>此模型建议：{values}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="164"/>
        <source>, </source>
        <translation>，</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="254"/>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="260"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="261"/>
        <source>Close the settings</source>
        <translation>关闭设置</translation>
    </message>
    <message>
        <source>Open a GGUF model file</source>
        <translation type="obsolete">打开 GGUF 模型文件</translation>
    </message>
    <message>
        <source>Open folder…</source>
        <translation type="obsolete">打开文件夹…</translation>
    </message>
    <message>
        <source>Open a Hugging Face model folder</source>
        <translation type="obsolete">打开 Hugging Face 模型文件夹</translation>
    </message>
    <message>
        <source>Sampling</source>
        <translation type="obsolete">采样</translation>
    </message>
    <message>
        <source>Model</source>
        <translation type="obsolete">模型</translation>
    </message>
    <message>
        <source>Open GGUF…</source>
        <translation type="obsolete">打开 GGUF…</translation>
    </message>
    <message>
        <source>Load</source>
        <translation type="obsolete">加载</translation>
    </message>
    <message>
        <source>Load the selected model</source>
        <translation type="obsolete">加载所选模型</translation>
    </message>
    <message>
        <source>No model loaded</source>
        <translation type="obsolete">未加载模型</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation type="obsolete">取消</translation>
    </message>
    <message>
        <source>Cancel loading the model</source>
        <translation type="obsolete">取消加载模型</translation>
    </message>
    <message>
        <source>System prompt</source>
        <translation type="obsolete">系统提示词</translation>
    </message>
    <message>
        <source>{total:.2f} GiB (weights {weights:.2f}, KV cache {kv:.2f}, working memory {work:.2f})</source>
        <translation type="obsolete">{total:.2f} GiB（权重 {weights:.2f}，KV 缓存 {kv:.2f}，工作内存 {work:.2f}）</translation>
    </message>
    <message>
        <source>Before loading: {name}, {params:.0f}M parameters, needs about {memory}</source>
        <translation type="obsolete">加载前：{name}，{params:.0f}M 参数，约需 {memory}</translation>
    </message>
    <message>
        <source>; {free:.1f} GiB free</source>
        <translation type="obsolete">；可用 {free:.1f} GiB</translation>
    </message>
    <message>
        <source>. It will not fit: choose a shorter context length or a smaller model.</source>
        <translation type="obsolete">。内存不足：请选择更短的上下文长度或更小的模型。</translation>
    </message>
    <message>
        <source>This model cannot be opened: {message}</source>
        <translation type="obsolete">无法打开此模型：{message}</translation>
    </message>
    <message>
        <source>Open GGUF model</source>
        <translation type="obsolete">打开 GGUF 模型</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation type="obsolete">GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <source>Open Hugging Face model folder</source>
        <translation type="obsolete">打开 Hugging Face 模型文件夹</translation>
    </message>
    <message>
        <source>Loading</source>
        <translation type="obsolete">正在加载</translation>
    </message>
    <message>
        <source>Loading {name}…</source>
        <translation type="obsolete">正在加载 {name}…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation type="obsolete">正在取消…</translation>
    </message>
    <message>
        <source>{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. Memory: {memory}</source>
        <translation type="obsolete">{name}：{params:.0f}M 参数，{dtype}，运行于 {device}，上下文 {ctx}，加载用时 {secs:.1f} 秒。内存：{memory}</translation>
    </message>
    <message>
        <source>Adapter in use: {name}.</source>
        <translation type="obsolete">正在使用的适配器：{name}。</translation>
    </message>
    <message>
        <source>Loading {name} was cancelled.</source>
        <translation type="obsolete">已取消加载 {name}。</translation>
    </message>
    <message>
        <source>Could not load {spec}: {message}</source>
        <translation type="obsolete">无法加载 {spec}：{message}</translation>
    </message>
</context>
<context>
    <name>SourcesView</name>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="80"/>
        <source>Sources</source>
        <translation>来源</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="95"/>
        <source>Open source {n}</source>
        <translation>打开来源 {n}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="108"/>
        <source>Source {n}</source>
        <translation>来源 {n}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="120"/>
        <source>Characters {start}–{end} of the document&apos;s text</source>
        <translation>文档文本的第 {start}–{end} 个字符</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="125"/>
        <source>Passage</source>
        <translation>段落</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="132"/>
        <source>Open file</source>
        <translation>打开文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="137"/>
        <source>The file is no longer there.</source>
        <translation>该文件已不存在。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="186"/>
        <source>What the model saw</source>
        <translation>模型看到的内容</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="189"/>
        <source>The exact prompt of this reply: the system prompt, the conversation that fitted the context and any document passages, with the chat template&apos;s markers.</source>
        <translation>此回复的完整提示词：系统提示词、放得下上下文的对话内容以及文档段落，包括聊天模板的标记。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="194"/>
        <source>Prompt</source>
        <translation>提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/sources_view.py" line="199"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
</context>
<context>
    <name>ThinkingView</name>
    <message>
        <location filename="../../chatapp/ui/thinking_view.py" line="31"/>
        <source>Show the model&apos;s reasoning</source>
        <translation>显示模型的推理过程</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/thinking_view.py" line="60"/>
        <source>Thinking…</source>
        <translation>思考中…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/thinking_view.py" line="63"/>
        <source>No reasoning</source>
        <translation>无推理内容</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/thinking_view.py" line="63"/>
        <source>Reasoning ({n} words)</source>
        <translation>推理过程（{n} 个词）</translation>
    </message>
</context>
<context>
    <name>TokenView</name>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="90"/>
        <source>Probability the model gave each token:</source>
        <translation>模型给每个词元的概率：</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="98"/>
        <source>Point at a token to see what the model was choosing between; click it to keep it.</source>
        <translation>指向一个词元可查看模型当时在哪些候选之间选择；点击可固定显示。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="104"/>
        <source>Token</source>
        <translation>词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="104"/>
        <source>Model probability</source>
        <translation>模型概率</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="133"/>
        <source>Token {n}: “{token}”, model {model}, sampler {sampler} (the probability it had under the sampling settings in force)</source>
        <translation>第 {n} 个词元：“{token}”，模型 {model}，采样器 {sampler}（在当前采样设置下的概率）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="145"/>
        <source>chosen</source>
        <translation>已选</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="147"/>
        <source>Continue from this</source>
        <translation>从这里继续</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/token_view.py" line="148"/>
        <source>A new version of the reply: the same up to here, then this token</source>
        <translation>回复的新版本：到此为止相同，然后使用这个词元</translation>
    </message>
</context>
<context>
    <name>TrainingController</name>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="95"/>
        <source>Load a model first.</source>
        <translation>请先加载模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="98"/>
        <source>Wait for the current reply or model load to finish.</source>
        <translation>请等待当前回复或模型加载完成。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="139"/>
        <source>Training completed: {name}</source>
        <translation>训练完成：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="139"/>
        <source>Training cancelled: {name}</source>
        <translation>训练已取消：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="140"/>
        <source>Training failed: {name}</source>
        <translation>训练失败：{name}</translation>
    </message>
    <message>
        <source>The adapter was not loaded.</source>
        <translation type="obsolete">适配器未加载。</translation>
    </message>
    <message>
        <source>Training {status}: {out}</source>
        <translation type="obsolete">训练{status}：{out}</translation>
    </message>
</context>
<context>
    <name>TrainingExamples</name>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="68"/>
        <source>nothing left to save: keep at least one row</source>
        <translation>没有可保存的内容：请至少保留一行</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="73"/>
        <source>row {n}: {problem}</source>
        <translation>第 {n} 行：{problem}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="106"/>
        <source>Training examples</source>
        <translation>训练样例</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="106"/>
        <source>Quiz questions</source>
        <translation>测验题目</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="117"/>
        <source>Kind</source>
        <translation>类型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="117"/>
        <location filename="../../chatapp/ui/training/examples.py" line="118"/>
        <source>Question</source>
        <translation>问题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="117"/>
        <source>Answer or text</source>
        <translation>答案或文本</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="118"/>
        <source>#</source>
        <translation>#</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="118"/>
        <source>Accepted answers (separated by |)</source>
        <translation>可接受的答案（用 | 分隔）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="130"/>
        <source>Delete selected rows</source>
        <translation>删除所选行</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="131"/>
        <source>Save</source>
        <translation>保存</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="132"/>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="145"/>
        <source>Reading {file}…</source>
        <translation>正在读取 {file}…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="169"/>
        <source>Cannot open {file}: {reason}</source>
        <translation>无法打开 {file}：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="185"/>
        <source>{n} rows in {file}. Double-click a cell to edit it.</source>
        <translation>{file} 中共 {n} 行。双击单元格即可编辑。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="203"/>
        <source>(a conversation of {n} messages)</source>
        <translation>（包含 {n} 条消息的对话）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="239"/>
        <source>Saving…</source>
        <translation>正在保存…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="247"/>
        <source>Saved {n} rows to {file}.</source>
        <translation>已将 {n} 行保存到 {file}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/examples.py" line="253"/>
        <source>Not saved: {reason}</source>
        <translation>未保存：{reason}</translation>
    </message>
</context>
<context>
    <name>TrainingPanel</name>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="40"/>
        <source>Adapters and trained models</source>
        <translation>适配器与训练好的模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="55"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="79"/>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="55"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="78"/>
        <source>Base model</source>
        <translation>基础模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="55"/>
        <source>Date</source>
        <translation>日期</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="55"/>
        <source>Val. perplexity</source>
        <translation>验证困惑度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="56"/>
        <source>Adapters</source>
        <translation>适配器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="64"/>
        <location filename="../../chatapp/ui/training/adapters.py" line="144"/>
        <source>Chat with this adapter</source>
        <translation>用此适配器对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="65"/>
        <source>Switch adapter off</source>
        <translation>关闭适配器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="66"/>
        <source>Compare</source>
        <translation>对比</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="67"/>
        <source>Open folder</source>
        <translation>打开文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="68"/>
        <source>Export merged…</source>
        <translation>导出合并模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="69"/>
        <source>Write the adapter merged into its base model as a model folder that this app and transformers open</source>
        <translation>将适配器合并进基础模型，写成本应用和 transformers 都能打开的模型文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="71"/>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="112"/>
        <source> (in use)</source>
        <translation> (使用中)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="114"/>
        <source> (full model)</source>
        <translation> (完整模型)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="116"/>
        <source> (damaged)</source>
        <translation>（已损坏）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="118"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="114"/>
        <source>the default model</source>
        <translation>默认模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="143"/>
        <source>Chat with this model</source>
        <translation>与此模型对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="175"/>
        <source>Export the merged model as a new folder</source>
        <translation>将合并后的模型导出为新文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="191"/>
        <source>Cannot export to {out}: {problem}</source>
        <translation>无法导出到 {out}：{problem}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="196"/>
        <source>Exporting {name} merged into its base model to {out}…</source>
        <translation>正在将 {name} 合并进基础模型并导出到 {out}…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="207"/>
        <source>Exported to {out}. Open it as a model with Open folder… in the chat&apos;s model panel.</source>
        <translation>已导出到 {out}。可在聊天的模型面板中用“打开文件夹…”将其作为模型打开。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="211"/>
        <source>Export failed: {reason}</source>
        <translation>导出失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="20"/>
        <location filename="../../chatapp/ui/training/common.py" line="30"/>
        <source>{n:.2f} GiB</source>
        <translation>{n:.2f} GiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="22"/>
        <source>{n:.1f} MiB</source>
        <translation>{n:.1f} MiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="24"/>
        <source>{n:.1f} KiB</source>
        <translation>{n:.1f} KiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="25"/>
        <source>{n} B</source>
        <translation>{n} 字节</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="38"/>
        <location filename="../../chatapp/ui/training/common.py" line="48"/>
        <source>{s} s</source>
        <translation>{s} 秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="40"/>
        <source>{m} min {s:02d} s</source>
        <translation>{m} 分 {s:02d} 秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="41"/>
        <source>{h} h {m:02d} min</source>
        <translation>{h} 小时 {m:02d} 分</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="50"/>
        <source>{m} min</source>
        <translation>{m} 分钟</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/common.py" line="54"/>
        <source>{low} to {high}</source>
        <translation>{low} 到 {high}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="61"/>
        <source>Documents</source>
        <translation>文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="73"/>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="74"/>
        <source>Add files…</source>
        <translation>添加文件…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="75"/>
        <source>Clear</source>
        <translation>清空</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="80"/>
        <source>Chosen documents</source>
        <translation>已选文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="83"/>
        <source>Or drop files and folders here.</source>
        <translation>也可以把文件和文件夹拖放到这里。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="86"/>
        <location filename="../../chatapp/ui/training/documents.py" line="152"/>
        <source>No documents chosen.</source>
        <translation>尚未选择文档。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="90"/>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="90"/>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="90"/>
        <source>Tokens</source>
        <translation>词元</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="90"/>
        <source>Used?</source>
        <translation>是否使用</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="91"/>
        <source>Files read</source>
        <translation>读取的文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="124"/>
        <source>Choose a folder of documents</source>
        <translation>选择文档文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="130"/>
        <source>Choose documents</source>
        <translation>选择文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="131"/>
        <source>Documents (*.txt *.md *.rst *.html *.htm *.pdf *.docx);;All files (*)</source>
        <translation>文档 (*.txt *.md *.rst *.html *.htm *.pdf *.docx);;所有文件 (*)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="154"/>
        <source>Reading the documents…</source>
        <translation>正在读取文档…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="172"/>
        <source>Cannot read the documents: {message}</source>
        <translation>无法读取文档：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="195"/>
        <source>about {n:,}</source>
        <translation>约 {n:,}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="204"/>
        <source>{used} files used ({size} of text, about {tokens:,} tokens), {skipped} skipped.</source>
        <translation>使用了 {used} 个文件（{size} 文本，约 {tokens:,} 个词元），跳过 {skipped} 个。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="207"/>
        <source>None of these files can be used for training.</source>
        <translation>这些文件都不能用于训练。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="213"/>
        <source>yes</source>
        <translation>是</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/documents.py" line="213"/>
        <source>no: {reason}</source>
        <translation>否：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="75"/>
        <source>Advanced</source>
        <translation>高级</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="84"/>
        <source>Train with these settings</source>
        <translation>按这些设置训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="85"/>
        <source>Advanced: start a run with the settings below as they are, without showing the estimate first. Teach does both.</source>
        <translation>高级：按下面的设置直接开始训练，不先显示估算。“教学”会先估算再训练。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="225"/>
        <location filename="../../chatapp/ui/training/panel.py" line="232"/>
        <source>Cannot start: {reason}</source>
        <translation>无法开始：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="259"/>
        <source>Estimating…</source>
        <translation>正在估算…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="276"/>
        <source>Estimating how long teaching takes…</source>
        <translation>正在估算教学所需时间…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="319"/>
        <source>Cancelling: saving a checkpoint…</source>
        <translation>正在取消：保存检查点…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="365"/>
        <source>Press Teach again to start.</source>
        <translation>再次点击“教学”即可开始。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="372"/>
        <source>Estimate cancelled.</source>
        <translation>估算已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="397"/>
        <source>A checkpoint at step {step} was kept: press Resume to continue from it.</source>
        <translation>已保留第 {step} 步的检查点：点击“继续训练”可从这里接着训练。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="402"/>
        <source>Cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="404"/>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="404"/>
        <source>Cancelled at step {step}.</source>
        <translation>已在第 {step} 步取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="406"/>
        <source>Cancelled: {reason}.</source>
        <translation>已取消：{reason}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="409"/>
        <source>Stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="410"/>
        <source>Training stopped unexpectedly; resume from step {step} with Resume. ({reason})</source>
        <translation>训练意外停止；可点击“继续”从第 {step} 步恢复。（{reason}）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="413"/>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="414"/>
        <source>Failed: {reason}</source>
        <translation>失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="414"/>
        <source>unknown error</source>
        <translation>未知错误</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="422"/>
        <source>Completed {steps} steps. Saved to {out}</source>
        <translation>已完成 {steps} 步。已保存到 {out}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="424"/>
        <source>Stopped early at step {step}: held-out perplexity stopped improving.</source>
        <translation>在第 {step} 步提前停止：留出困惑度不再改善。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="427"/>
        <source> (the weights of step {step}, the lowest held-out perplexity)</source>
        <translation>（第 {step} 步的权重，留出困惑度最低）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="39"/>
        <source>Training</source>
        <translation>训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="42"/>
        <source>Estimate</source>
        <translation>估算</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="43"/>
        <source>Start training</source>
        <translation>开始训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="44"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="45"/>
        <source>Resume</source>
        <translation>继续训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="46"/>
        <location filename="../../chatapp/ui/training/run_view.py" line="80"/>
        <source>Show log</source>
        <translation>显示日志</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="57"/>
        <source>Not started</source>
        <translation>未开始</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="80"/>
        <source>Hide log</source>
        <translation>隐藏日志</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="107"/>
        <source>Preparing…</source>
        <translation>正在准备…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="109"/>
        <source>Reading documents and loading the model…</source>
        <translation>正在读取文档并加载模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="115"/>
        <source>{n} questions and answers written to {path}; training starts.</source>
        <translation>已写出 {n} 组问答到 {path}；开始训练。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="121"/>
        <source>Writing questions %v/%m</source>
        <translation>正在编写问题 %v/%m</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="122"/>
        <source>The model is writing questions and answers about your documents ({done} of {total})…</source>
        <translation>模型正在为您的文档编写问答（{done}/{total}）…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="129"/>
        <source>needs about {memory} of memory</source>
        <translation>需要约 {memory} 内存</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="131"/>
        <source> ({available} available)</source>
        <translation> (可用 {available})</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="136"/>
        <source>takes {range} ({steps} steps)</source>
        <translation>需要 {range}（{steps} 步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="139"/>
        <source>takes about {eta}</source>
        <translation>耗时约 {eta}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="140"/>
        <source>Estimate: {details}.</source>
        <translation>估算：{details}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="143"/>
        <source>This will likely run out of memory: use LoRA, a smaller batch size or a shorter block size.</source>
        <translation>这很可能会内存不足：请使用 LoRA、更小的批大小或更短的块大小。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="150"/>
        <source>Estimate failed: {reason}</source>
        <translation>估算失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="153"/>
        <source>{train} tokens to train on, {val} held out for validation.</source>
        <translation>{train} 个词元用于训练，{val} 个留作验证。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="156"/>
        <source>Too little text is held out to measure perplexity.</source>
        <translation>留出的文本太少，无法测量困惑度。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="165"/>
        <source>Step {step} of {total} · about {eta} left</source>
        <translation>第 {step}/{total} 步 · 约剩 {eta}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="171"/>
        <source>loss {loss:.4f} · {speed:,.0f} tokens/s · lr {lr:.2e}</source>
        <translation>损失 {loss:.4f} · {speed:,.0f} 词元/秒 · 学习率 {lr:.2e}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="174"/>
        <source>The loss is not a number: training has diverged; try a lower learning rate.</source>
        <translation>损失值不是数字（NaN）：训练已发散，请尝试更低的学习率。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="176"/>
        <source>Training…</source>
        <translation>正在训练…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="191"/>
        <source>Perplexity on held-out text: before {before:.2f}</source>
        <translation>留出文本上的困惑度：训练前 {before:.2f}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="194"/>
        <source>, after {after:.2f} ({change:+.0f}%)</source>
        <translation>，训练后 {after:.2f}（{change:+.0f}%）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="203"/>
        <source>training loss {first:.2f} → {last:.2f}</source>
        <translation>训练损失 {first:.2f} → {last:.2f}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="206"/>
        <source>held-out perplexity {before:.2f} → {after:.2f} ({change:+.1f}%)</source>
        <translation>验证困惑度 {before:.2f} → {after:.2f}（{change:+.1f}%）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="209"/>
        <source>The model barely changed: train longer (more epochs or steps), raise the learning rate, or choose more LoRA layers.</source>
        <translation>模型几乎没有变化：请训练更久（更多轮次或步数）、提高学习率，或选择更多 LoRA 层。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="212"/>
        <source>The model got worse on text it did not train on: it is learning the training text by heart. Train for fewer steps, lower the learning rate, or stop early.</source>
        <translation>模型在未训练过的文本上变差了：它在死记训练文本。请减少步数、降低学习率，或提前停止。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="215"/>
        <source>The model fits your documents better than before.</source>
        <translation>模型比之前更贴合你的文档。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="218"/>
        <source>The training loss barely moved: train longer or raise the learning rate.</source>
        <translation>训练损失几乎没有变化：请训练更久或提高学习率。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="220"/>
        <source>No text was held out, so it is unknown how well this carries over to new text.</source>
        <translation>没有留出验证文本，因此无法得知在新文本上的效果。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="223"/>
        <source>Change: {parts}.</source>
        <translation>变化：{parts}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="223"/>
        <source>; </source>
        <translation>；</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="228"/>
        <source>Completed · {steps} steps</source>
        <translation>已完成 · {steps} 步</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="30"/>
        <source>Method and settings</source>
        <translation>方法与设置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="37"/>
        <source>adapter</source>
        <translation>adapter</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="39"/>
        <source>LoRA (recommended)</source>
        <translation>LoRA（推荐）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="39"/>
        <source>Full fine-tune</source>
        <translation>全量微调</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="40"/>
        <source>From scratch</source>
        <translation>从头训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="45"/>
        <source>Auto (sized to the documents)</source>
        <translation>自动（按文档规模）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="47"/>
        <source>From epochs</source>
        <translation>由轮数决定</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="49"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="54"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="56"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="58"/>
        <source>Auto (by recipe)</source>
        <translation>自动（按训练方案）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="59"/>
        <source>Attention q, v (fastest)</source>
        <translation>注意力 q、v（最快）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="60"/>
        <source>All attention (q, k, v, o)</source>
        <translation>全部注意力层（q、k、v、o）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="61"/>
        <source>All linear layers (learns most)</source>
        <translation>全部线性层（学得最多）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="63"/>
        <source>Which layers get an adapter: more layers learn more from the documents, train slower, and overfit sooner</source>
        <translation>哪些层加适配器：层越多，从文档学到的越多，训练越慢，也越早过拟合</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="66"/>
        <source>Before and after only</source>
        <translation>仅训练前后</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="68"/>
        <source>Never</source>
        <translation>从不</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="69"/>
        <source> evaluations</source>
        <translation> 次评估</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="70"/>
        <source>Stop when this many evaluations in a row find no lower held-out perplexity, and keep the weights of the best one</source>
        <translation>连续这么多次评估的留出困惑度都没有降低时停止训练，并保留最佳一次的权重</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="73"/>
        <source>At the end only</source>
        <translation>仅在结束时</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="79"/>
        <source>Method</source>
        <translation>方法</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="80"/>
        <source>Epochs</source>
        <translation>轮数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="80"/>
        <source>Max steps</source>
        <translation>最大步数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="81"/>
        <source>Learning rate</source>
        <translation>学习率</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="81"/>
        <source>Batch size</source>
        <translation>批大小</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="82"/>
        <source>Gradient accumulation</source>
        <translation>梯度累积</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="83"/>
        <source>Block size (tokens)</source>
        <translation>块大小（词元）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="83"/>
        <source>LoRA rank</source>
        <translation>LoRA 秩</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="84"/>
        <source>LoRA alpha</source>
        <translation>LoRA alpha</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="84"/>
        <source>LoRA layers</source>
        <translation>LoRA 层</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="85"/>
        <source>Evaluate every (steps)</source>
        <translation>评估间隔（步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="86"/>
        <source>Stop if no gain for</source>
        <translation>无改进则停止，持续</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="87"/>
        <source>Checkpoint every (steps)</source>
        <translation>检查点间隔（步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="87"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="116"/>
        <source>{name} ({weights}: LoRA trains over the compact weights)</source>
        <translation>{name}（{weights}：LoRA 在紧凑权重上训练）</translation>
    </message>
    <message>
        <source>Skipped file</source>
        <translation type="obsolete">跳过的文件</translation>
    </message>
    <message>
        <source>Reason</source>
        <translation type="obsolete">原因</translation>
    </message>
    <message>
        <source>Skipped files</source>
        <translation type="obsolete">跳过的文件列表</translation>
    </message>
    <message>
        <source>{used} files used, {skipped} skipped.</source>
        <translation type="obsolete">使用了 {used} 个文件，跳过 {skipped} 个。</translation>
    </message>
    <message>
        <source> A checkpoint at step {step} was kept: Resume continues from it.</source>
        <translation type="obsolete"> 已保留第 {step} 步的检查点：点击“继续训练”可从这里接着训练。</translation>
    </message>
    <message>
        <source>Completed</source>
        <translation type="obsolete">已完成</translation>
    </message>
    <message>
        <source>Completed. Saved to {out}</source>
        <translation type="obsolete">已完成。已保存到 {out}</translation>
    </message>
    <message>
        <source>Export the merged model into</source>
        <translation type="obsolete">将合并后的模型导出到</translation>
    </message>
</context>
<context>
    <name>TrainingProcess</name>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="229"/>
        <source>the training process could not start: {error}</source>
        <translation>训练进程无法启动：{error}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="250"/>
        <source>the process did not stop in time and was killed; no checkpoint was written</source>
        <translation>进程未能及时停止，已被强制结束；未写入检查点</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="259"/>
        <source>it reported completion but then {what}</source>
        <translation>它报告已完成，但随后{what}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="264"/>
        <source>the training process crashed or was killed (the system may have run out of memory)</source>
        <translation>训练进程崩溃或被终止（系统可能内存不足）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="267"/>
        <source>the training process was killed (exit code {code}), most often by the system running out of memory</source>
        <translation>训练进程被终止（退出代码 {code}），通常是因为系统内存不足</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="270"/>
        <source>the training process exited without reporting an end</source>
        <translation>训练进程已退出，但没有报告结束状态</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="272"/>
        <source>the training process exited with code {code}</source>
        <translation>训练进程以代码 {code} 退出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="275"/>
        <source>; last output: {lines}</source>
        <translation>；最后的输出：{lines}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="281"/>
        <source>out of memory. Try LoRA, a smaller batch size or a shorter block size. Details: {reason}</source>
        <translation>内存不足。请尝试 LoRA、更小的批大小或更短的块大小。详情：{reason}</translation>
    </message>
</context>
<context>
    <name>TrainingQuiz</name>
    <message>
        <location filename="../../chatapp/ui/training/quiz.py" line="183"/>
        <source>no output</source>
        <translation>无输出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz.py" line="184"/>
        <source>the quiz exited with code {code}: {tail}</source>
        <translation>测验进程以代码 {code} 退出：{tail}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz.py" line="189"/>
        <source>the quiz could not start: {error}</source>
        <translation>测验无法启动：{error}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="48"/>
        <source>questions can be made from documents, not from a conversation file</source>
        <translation>只能根据文档生成题目，不能根据对话文件生成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="51"/>
        <source>no questions could be made from these documents (no names, dates or numbers found)</source>
        <translation>无法根据这些文档生成题目（未找到人名、日期或数字）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="63"/>
        <source>What does the model know?</source>
        <translation>模型知道什么？</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="87"/>
        <source>1. Add documents  2. Ask the quiz: what does the model know now?  3. Teach  4. Ask again: what does it know after?</source>
        <translation>1. 添加文档  2. 进行测验：模型现在知道什么？  3. 教学  4. 再次测验：教学后它知道什么？</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="90"/>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="173"/>
        <source>Questions: none yet</source>
        <translation>题目：暂无</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="92"/>
        <source>Choose questions file…</source>
        <translation>选择题目文件…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="93"/>
        <source>Make questions from the documents</source>
        <translation>根据文档生成题目</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="94"/>
        <source>Review questions…</source>
        <translation>查看题目…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="95"/>
        <source>Ask the quiz</source>
        <translation>进行测验</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="96"/>
        <source>Cancel quiz</source>
        <translation>取消测验</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="100"/>
        <source>Quiz not run</source>
        <translation>尚未测验</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="105"/>
        <source>Quiz scores</source>
        <translation>测验得分</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="106"/>
        <source>Before teaching</source>
        <translation>教学前</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="106"/>
        <source>After teaching</source>
        <translation>教学后</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="108"/>
        <source>Base model</source>
        <translation>基础模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="108"/>
        <source>Base model + documents</source>
        <translation>基础模型 + 文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="108"/>
        <source>Tuned</source>
        <translation>微调后</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="109"/>
        <source>Tuned + documents</source>
        <translation>微调后 + 文档</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="111"/>
        <source>Teach</source>
        <translation>教学</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="112"/>
        <source>Train on the documents with the recommended settings (the first press shows how long it will take)</source>
        <translation>用推荐设置在文档上训练（第一次点击会显示所需时间）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="116"/>
        <source>Review training examples…</source>
        <translation>查看训练样例…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="172"/>
        <source>Questions: {file}</source>
        <translation>题目：{file}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="201"/>
        <source>Quiz questions</source>
        <translation>测验题目</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="202"/>
        <source>Questions (*.jsonl);;All files (*)</source>
        <translation>题目 (*.jsonl);;所有文件 (*)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="213"/>
        <source>Making questions from the documents…</source>
        <translation>正在根据文档生成题目…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="222"/>
        <source>{n} questions made from the documents: review them, then ask the quiz.</source>
        <translation>已根据文档生成 {n} 道题目：请先查看，然后进行测验。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="228"/>
        <source>No questions: {reason}</source>
        <translation>没有题目：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="264"/>
        <source>The next run trains on the examples in {file}.</source>
        <translation>下一次训练将使用 {file} 中的样例。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="309"/>
        <source>Indexing the documents…</source>
        <translation>正在为文档建立索引…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="310"/>
        <source>Indexing the documents for the "+ documents" rows (only changed files are read)…</source>
        <translation>正在为“+ 文档”各行的文档建立索引（只读取有改动的文件）…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="323"/>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="377"/>
        <source>Quiz cancelled</source>
        <translation>测验已取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="324"/>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="382"/>
        <source>Quiz cancelled.</source>
        <translation>测验已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="338"/>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="378"/>
        <source>Quiz failed</source>
        <translation>测验失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="339"/>
        <source>The documents could not be indexed: {reason}</source>
        <translation>无法为文档建立索引：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="349"/>
        <source>Loading the model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="350"/>
        <source>Asking the quiz ({n} runs)…</source>
        <translation>正在测验（{n} 轮）…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="358"/>
        <source>{row}: question {done} of {total}</source>
        <translation>{row}：第 {done} 题，共 {total} 题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="377"/>
        <source>Quiz done</source>
        <translation>测验完成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="380"/>
        <source>The quiz failed: {reason}</source>
        <translation>测验失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="384"/>
        <source>Quiz done: {n} runs.</source>
        <translation>测验完成：共 {n} 轮。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/quiz_box.py" line="389"/>
        <source>The scores could not be kept: {reason}</source>
        <translation>无法保存得分：{reason}</translation>
    </message>
    <message>
        <source>Cannot open {file}: {reason}</source>
        <translation type="obsolete">无法打开 {file}：{reason}</translation>
    </message>
</context>
<context>
    <name>WeightsPicker</name>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="28"/>
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="28"/>
        <source>float32 (exact)</source>
        <translation>float32（精确）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="29"/>
        <source>int8 (compact)</source>
        <translation>int8（紧凑）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="29"/>
        <source>int4 (smallest)</source>
        <translation>int4（最小）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="34"/>
        <source>fits</source>
        <translation>放得下</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="34"/>
        <source>tight</source>
        <translation>偏紧</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="34"/>
        <source>does not fit</source>
        <translation>放不下</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="42"/>
        <source>Automatic: {option}</source>
        <translation>自动：{option}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="46"/>
        <source>{name} · {memory:.2f} GiB · {fit}</source>
        <translation>{name} · {memory:.2f} GiB · {fit}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="56"/>
        <source>Weights: {option} (automatic)</source>
        <translation>权重：{option}（自动）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="57"/>
        <source>Weights: {option}</source>
        <translation>权重：{option}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="69"/>
        <source>Weights in memory</source>
        <translation>内存中的权重</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/weights_picker.py" line="70"/>
        <source>How the weights are held in memory: float32 is exact; int8 and int4 need a quarter to a sixth of the memory and change the answers slightly. Used the next time the model is loaded.</source>
        <translation>权重在内存中的存放方式：float32 精确；int8 和 int4 只需约四分之一到六分之一的内存，回答会略有变化。下次加载模型时生效。</translation>
    </message>
</context>
</TS>
