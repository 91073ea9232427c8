<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>App</name>
    <message>
        <location filename="../../chatapp/ui/app.py" line="52"/>
        <source>{name} (recent)</source>
        <translation>{name}（最近使用）</translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="30"/>
        <source>Copy code</source>
        <translation>复制代码</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="31"/>
        <source>Copy code block</source>
        <translation>复制代码块</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="61"/>
        <source>code</source>
        <translation>代码</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="103"/>
        <source>You</source>
        <translation>你</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="103"/>
        <source>Assistant</source>
        <translation>助手</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="109"/>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="110"/>
        <source>Copy message</source>
        <translation>复制消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="113"/>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="114"/>
        <source>Edit message and resend</source>
        <translation>编辑消息并重新发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="118"/>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="119"/>
        <source>Regenerate reply</source>
        <translation>重新生成回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="123"/>
        <source>Continue</source>
        <translation>继续</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="124"/>
        <source>Continue the reply where it stopped</source>
        <translation>从中断处继续回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="182"/>
        <source>Edited message</source>
        <translation>编辑后的消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="184"/>
        <source>Save &amp;&amp; resend</source>
        <translation>保存 &amp;&amp; 重新发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="185"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="220"/>
        <source>Conversation</source>
        <translation>对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/chat_view.py" line="231"/>
        <source>Send a message to start the conversation.</source>
        <translation>发送一条消息，开始对话。</translation>
    </message>
</context>
<context>
    <name>CompareView</name>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="29"/>
        <source>Compare base and fine-tuned model</source>
        <translation>对比基础模型与微调模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="33"/>
        <source>No adapter chosen</source>
        <translation>未选择适配器</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="37"/>
        <source>A question about your documents</source>
        <translation>关于你的文档的问题</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="38"/>
        <source>Prompt to compare</source>
        <translation>用于对比的提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="42"/>
        <location filename="../../chatapp/ui/compare_view.py" line="44"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="45"/>
        <source>Both replies use this seed, so the difference comes from the adapter.</source>
        <translation>两个回复使用同一个随机种子，因此差异来自适配器。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="48"/>
        <source>Compare</source>
        <translation>对比</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="49"/>
        <source>Generate with both models</source>
        <translation>用两个模型分别生成</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="53"/>
        <source>Base model</source>
        <translation>基础模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="54"/>
        <source>Fine-tuned</source>
        <translation>微调后</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="73"/>
        <source>Fine-tuned: {name}</source>
        <translation>微调后：{name}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="92"/>
        <source>Generating…</source>
        <translation>正在生成…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/compare_view.py" line="98"/>
        <source>Failed: {message}</source>
        <translation>失败：{message}</translation>
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
        <location filename="../../chatapp/ui/conversation_list.py" line="58"/>
        <source>Untitled</source>
        <translation>未命名</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="85"/>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="86"/>
        <source>Export as Markdown…</source>
        <translation>导出为 Markdown…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="87"/>
        <source>Export as JSON…</source>
        <translation>导出为 JSON…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/conversation_list.py" line="89"/>
        <source>Delete</source>
        <translation>删除</translation>
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
        <location filename="../../chatapp/ui/main_window.py" line="123"/>
        <source>Message the model (Enter sends, Shift+Enter for a new line)</source>
        <translation>给模型发消息（Enter 发送，Shift+Enter 换行）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="124"/>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="126"/>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="127"/>
        <source>Send message</source>
        <translation>发送消息</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="128"/>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="129"/>
        <source>Stop the reply</source>
        <translation>停止回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="150"/>
        <source>Chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="151"/>
        <source>Train</source>
        <translation>训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="156"/>
        <source>No model</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="159"/>
        <location filename="../../chatapp/ui/main_window.py" line="160"/>
        <source>Undo delete</source>
        <translation>撤销删除</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="195"/>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="196"/>
        <location filename="../../chatapp/ui/main_window.py" line="367"/>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="197"/>
        <source>Import conversation…</source>
        <translation>导入对话…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="199"/>
        <source>Quit</source>
        <translation>退出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="200"/>
        <source>&amp;Chat</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="201"/>
        <source>Focus message box</source>
        <translation>聚焦到消息框</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="202"/>
        <source>Stop reply</source>
        <translation>停止回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="203"/>
        <source>Regenerate reply</source>
        <translation>重新生成回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="204"/>
        <source>Continue reply</source>
        <translation>继续回复</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="205"/>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="206"/>
        <location filename="../../chatapp/ui/main_window.py" line="209"/>
        <source>About chatapp</source>
        <translation>关于 chatapp</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="210"/>
        <source>chatapp {version}

Chat with a language model on your own machine, and teach it your own documents.</source>
        <translation>chatapp {version}

在你自己的电脑上与语言模型对话，并用你自己的文档训练它。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="224"/>
        <source>Loading model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="243"/>
        <source>Stop the reply before switching models.</source>
        <translation>请先停止回复，再切换模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="246"/>
        <source>Loading</source>
        <translation>正在加载</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="247"/>
        <source>Loading {spec}…</source>
        <translation>正在加载 {spec}…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="263"/>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="292"/>
        <source>{name}: {params:.0f}M parameters, {dtype} on {device}, context {ctx}, loaded in {secs:.1f} s. Memory: {memory}</source>
        <translation>{name}：{params:.0f}M 参数，{dtype}，运行于 {device}，上下文 {ctx}，加载用时 {secs:.1f} 秒。内存：{memory}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="296"/>
        <location filename="../../chatapp/ui/main_window.py" line="570"/>
        <source>context {used}/{limit}</source>
        <translation>上下文 {used}/{limit}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="308"/>
        <source> The previous model ({name}) is still loaded.</source>
        <translation> 之前的模型（{name}）仍保持加载。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="314"/>
        <source>Loading {spec} was cancelled.</source>
        <translation>已取消加载 {spec}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="323"/>
        <source>Could not load {spec}: {message}</source>
        <translation>无法加载 {spec}：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="324"/>
        <source>Model load failed: {message}</source>
        <translation>模型加载失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="353"/>
        <location filename="../../chatapp/ui/main_window.py" line="466"/>
        <source>writing…</source>
        <translation>正在输出…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="359"/>
        <location filename="../../chatapp/ui/main_window.py" line="562"/>
        <source>stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="359"/>
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="361"/>
        <location filename="../../chatapp/ui/main_window.py" line="564"/>
        <source>cut at the token limit</source>
        <translation>已达词元上限</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="388"/>
        <source>Conversation deleted.</source>
        <translation>对话已删除。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="403"/>
        <source>Export conversation</source>
        <translation>导出对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="409"/>
        <source>Export failed</source>
        <translation>导出失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="411"/>
        <source>Exported to {path}</source>
        <translation>已导出到 {path}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="415"/>
        <source>Import conversation</source>
        <translation>导入对话</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="415"/>
        <source>JSON (*.json)</source>
        <translation>JSON 文件 (*.json)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="421"/>
        <source>Import failed</source>
        <translation>导入失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="436"/>
        <source>The model is not loaded yet; your message is kept.</source>
        <translation>模型尚未加载；你的消息已保留。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="560"/>
        <source>{n} tokens · {speed:.1f} tok/s</source>
        <translation>{n} 个词元 · {speed:.1f} 词元/秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="568"/>
        <source>{speed:.1f} tok/s</source>
        <translation>{speed:.1f} 词元/秒</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="574"/>
        <source>{n} earlier messages did not fit the context and were left out of this reply.</source>
        <translation>有 {n} 条较早的消息超出了上下文长度，本次回复未包含它们。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="592"/>
        <source>failed: {message}</source>
        <translation>失败：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/main_window.py" line="593"/>
        <source>The reply failed: {message}</source>
        <translation>回复失败：{message}</translation>
    </message>
</context>
<context>
    <name>SettingsPanel</name>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="28"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="31"/>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="35"/>
        <source>Open GGUF…</source>
        <translation>打开 GGUF…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="36"/>
        <source>Open a GGUF model file</source>
        <translation>打开 GGUF 模型文件</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="37"/>
        <source>Open folder…</source>
        <translation>打开文件夹…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="38"/>
        <source>Open a Hugging Face model folder</source>
        <translation>打开 Hugging Face 模型文件夹</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="39"/>
        <source>Load</source>
        <translation>加载</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="40"/>
        <source>Load the selected model</source>
        <translation>加载所选模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="45"/>
        <source>No model loaded</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="56"/>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="57"/>
        <source>Cancel loading the model</source>
        <translation>取消加载模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="66"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="72"/>
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="68"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="74"/>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="70"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="75"/>
        <source>Context length</source>
        <translation>上下文长度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="73"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="76"/>
        <source>CPU threads</source>
        <translation>CPU 线程数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="80"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="83"/>
        <source>System prompt</source>
        <translation>系统提示词</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="88"/>
        <source>Sampling</source>
        <translation>采样</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="90"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="102"/>
        <source>Temperature</source>
        <translation>温度</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="91"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="102"/>
        <source>Top-p</source>
        <translation>Top-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="92"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="103"/>
        <source>Min-p</source>
        <translation>Min-p</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="93"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="104"/>
        <source>Repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="95"/>
        <source>Off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="96"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="103"/>
        <source>Top-k</source>
        <translation>Top-k</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="98"/>
        <source>Maximum new tokens</source>
        <translation>最大生成词元数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="100"/>
        <source>Random</source>
        <translation>随机</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="101"/>
        <location filename="../../chatapp/ui/settings_panel.py" line="105"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="105"/>
        <source>Max new tokens</source>
        <translation>最大生成词元数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="147"/>
        <source>{total:.2f} GiB (weights {weights:.2f}, KV cache {kv:.2f}, working memory {work:.2f})</source>
        <translation>{total:.2f} GiB（权重 {weights:.2f}，KV 缓存 {kv:.2f}，工作内存 {work:.2f}）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="155"/>
        <source>Before loading: {name}, {params:.0f}M parameters, needs about {memory}</source>
        <translation>加载前：{name}，{params:.0f}M 参数，约需 {memory}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="158"/>
        <source>; {free:.1f} GiB free</source>
        <translation>；可用 {free:.1f} GiB</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="160"/>
        <source>. It will not fit: choose a shorter context length or a smaller model.</source>
        <translation>。内存不足：请选择更短的上下文长度或更小的模型。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="169"/>
        <source>This model cannot be opened: {message}</source>
        <translation>无法打开此模型：{message}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="180"/>
        <source>Open GGUF model</source>
        <translation>打开 GGUF 模型</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="180"/>
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/settings_panel.py" line="185"/>
        <source>Open Hugging Face model folder</source>
        <translation>打开 Hugging Face 模型文件夹</translation>
    </message>
</context>
<context>
    <name>TrainingController</name>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="64"/>
        <source>Wait for the current reply or model load to finish.</source>
        <translation>请等待当前回复或模型加载完成。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_controller.py" line="104"/>
        <source>Training {status}: {out}</source>
        <translation>训练{status}：{out}</translation>
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
        <location filename="../../chatapp/ui/training/settings_form.py" line="73"/>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/adapters.py" line="55"/>
        <location filename="../../chatapp/ui/training/settings_form.py" line="72"/>
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
        <location filename="../../chatapp/ui/training/settings_form.py" line="101"/>
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
        <location filename="../../chatapp/ui/training/panel.py" line="170"/>
        <location filename="../../chatapp/ui/training/panel.py" line="177"/>
        <source>Cannot start: {reason}</source>
        <translation>无法开始：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="204"/>
        <source>Estimating…</source>
        <translation>正在估算…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="247"/>
        <source>Cancelling: saving a checkpoint…</source>
        <translation>正在取消：保存检查点…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="286"/>
        <source>Estimate cancelled.</source>
        <translation>估算已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="311"/>
        <source>A checkpoint at step {step} was kept: press Resume to continue from it.</source>
        <translation>已保留第 {step} 步的检查点：点击“继续训练”可从这里接着训练。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="316"/>
        <source>Cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="318"/>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="318"/>
        <source>Cancelled at step {step}.</source>
        <translation>已在第 {step} 步取消。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="320"/>
        <source>Cancelled: {reason}.</source>
        <translation>已取消：{reason}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="323"/>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="324"/>
        <source>Failed: {reason}</source>
        <translation>失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="324"/>
        <source>unknown error</source>
        <translation>未知错误</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="332"/>
        <source>Completed {steps} steps. Saved to {out}</source>
        <translation>已完成 {steps} 步。已保存到 {out}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="334"/>
        <source>Stopped early at step {step}: held-out perplexity stopped improving.</source>
        <translation>在第 {step} 步提前停止：留出困惑度不再改善。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/panel.py" line="337"/>
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
        <location filename="../../chatapp/ui/training/run_view.py" line="116"/>
        <source>needs about {memory} of memory</source>
        <translation>需要约 {memory} 内存</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="118"/>
        <source> ({available} available)</source>
        <translation> (可用 {available})</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="123"/>
        <source>takes {range} ({steps} steps)</source>
        <translation>需要 {range}（{steps} 步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="126"/>
        <source>takes about {eta}</source>
        <translation>耗时约 {eta}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="127"/>
        <source>Estimate: {details}.</source>
        <translation>估算：{details}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="130"/>
        <source>This will likely run out of memory: use LoRA, a smaller batch size or a shorter block size.</source>
        <translation>这很可能会内存不足：请使用 LoRA、更小的批大小或更短的块大小。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="137"/>
        <source>Estimate failed: {reason}</source>
        <translation>估算失败：{reason}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="140"/>
        <source>{train} tokens to train on, {val} held out for validation.</source>
        <translation>{train} 个词元用于训练，{val} 个留作验证。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="143"/>
        <source>Too little text is held out to measure perplexity.</source>
        <translation>留出的文本太少，无法测量困惑度。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="152"/>
        <source>Step {step} of {total} · about {eta} left</source>
        <translation>第 {step}/{total} 步 · 约剩 {eta}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="158"/>
        <source>loss {loss:.4f} · {speed:,.0f} tokens/s · lr {lr:.2e}</source>
        <translation>损失 {loss:.4f} · {speed:,.0f} 词元/秒 · 学习率 {lr:.2e}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="161"/>
        <source>The loss is not a number: training has diverged; try a lower learning rate.</source>
        <translation>损失值不是数字（NaN）：训练已发散，请尝试更低的学习率。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="163"/>
        <source>Training…</source>
        <translation>正在训练…</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="178"/>
        <source>Perplexity on held-out text: before {before:.2f}</source>
        <translation>留出文本上的困惑度：训练前 {before:.2f}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="181"/>
        <source>, after {after:.2f} ({change:+.0f}%)</source>
        <translation>，训练后 {after:.2f}（{change:+.0f}%）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="190"/>
        <source>training loss {first:.2f} → {last:.2f}</source>
        <translation>训练损失 {first:.2f} → {last:.2f}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="193"/>
        <source>held-out perplexity {before:.2f} → {after:.2f} ({change:+.1f}%)</source>
        <translation>验证困惑度 {before:.2f} → {after:.2f}（{change:+.1f}%）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="196"/>
        <source>The model barely changed: train longer (more epochs or steps), raise the learning rate, or choose more LoRA layers.</source>
        <translation>模型几乎没有变化：请训练更久（更多轮次或步数）、提高学习率，或选择更多 LoRA 层。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="199"/>
        <source>The model got worse on text it did not train on: it is learning the training text by heart. Train for fewer steps, lower the learning rate, or stop early.</source>
        <translation>模型在未训练过的文本上变差了：它在死记训练文本。请减少步数、降低学习率，或提前停止。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="202"/>
        <source>The model fits your documents better than before.</source>
        <translation>模型比之前更贴合你的文档。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="205"/>
        <source>The training loss barely moved: train longer or raise the learning rate.</source>
        <translation>训练损失几乎没有变化：请训练更久或提高学习率。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="207"/>
        <source>No text was held out, so it is unknown how well this carries over to new text.</source>
        <translation>没有留出验证文本，因此无法得知在新文本上的效果。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="210"/>
        <source>Change: {parts}.</source>
        <translation>变化：{parts}。</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="210"/>
        <source>; </source>
        <translation>；</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/run_view.py" line="215"/>
        <source>Completed · {steps} steps</source>
        <translation>已完成 · {steps} 步</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="30"/>
        <source>Method and settings</source>
        <translation>方法与设置</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="36"/>
        <source>adapter</source>
        <translation>adapter</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="38"/>
        <source>LoRA (recommended)</source>
        <translation>LoRA（推荐）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="38"/>
        <source>Full fine-tune</source>
        <translation>全量微调</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="39"/>
        <source>From scratch</source>
        <translation>从头训练</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="44"/>
        <source>From epochs</source>
        <translation>由轮数决定</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="53"/>
        <source>Attention q, v (fastest)</source>
        <translation>注意力 q、v（最快）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="54"/>
        <source>All attention (q, k, v, o)</source>
        <translation>全部注意力层（q、k、v、o）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="55"/>
        <source>All linear layers (learns most)</source>
        <translation>全部线性层（学得最多）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="57"/>
        <source>Which layers get an adapter: more layers learn more from the documents, train slower, and overfit sooner</source>
        <translation>哪些层加适配器：层越多，从文档学到的越多，训练越慢，也越早过拟合</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="60"/>
        <source>Before and after only</source>
        <translation>仅训练前后</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="62"/>
        <source>Never</source>
        <translation>从不</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="63"/>
        <source> evaluations</source>
        <translation> 次评估</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="64"/>
        <source>Stop when this many evaluations in a row find no lower held-out perplexity, and keep the weights of the best one</source>
        <translation>连续这么多次评估的留出困惑度都没有降低时停止训练，并保留最佳一次的权重</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="67"/>
        <source>At the end only</source>
        <translation>仅在结束时</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="73"/>
        <source>Method</source>
        <translation>方法</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="74"/>
        <source>Epochs</source>
        <translation>轮数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="74"/>
        <source>Max steps</source>
        <translation>最大步数</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="75"/>
        <source>Learning rate</source>
        <translation>学习率</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="75"/>
        <source>Batch size</source>
        <translation>批大小</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="76"/>
        <source>Gradient accumulation</source>
        <translation>梯度累积</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="77"/>
        <source>Block size (tokens)</source>
        <translation>块大小（词元）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="77"/>
        <source>LoRA rank</source>
        <translation>LoRA 秩</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="78"/>
        <source>LoRA alpha</source>
        <translation>LoRA alpha</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="78"/>
        <source>LoRA layers</source>
        <translation>LoRA 层</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="79"/>
        <source>Evaluate every (steps)</source>
        <translation>评估间隔（步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="80"/>
        <source>Stop if no gain for</source>
        <translation>无改进则停止，持续</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="81"/>
        <source>Checkpoint every (steps)</source>
        <translation>检查点间隔（步）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training/settings_form.py" line="81"/>
        <source>Seed</source>
        <translation>随机种子</translation>
    </message>
</context>
<context>
    <name>TrainingProcess</name>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="223"/>
        <source>the training process could not start: {error}</source>
        <translation>训练进程无法启动：{error}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="244"/>
        <source>the process did not stop in time and was killed; no checkpoint was written</source>
        <translation>进程未能及时停止，已被强制结束；未写入检查点</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="253"/>
        <source>it reported completion but then {what}</source>
        <translation>它报告已完成，但随后{what}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="258"/>
        <source>the training process crashed or was killed (the system may have run out of memory)</source>
        <translation>训练进程崩溃或被终止（系统可能内存不足）</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="261"/>
        <source>the training process was killed (exit code {code}), most often by the system running out of memory</source>
        <translation>训练进程被终止（退出代码 {code}），通常是因为系统内存不足</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="264"/>
        <source>the training process exited without reporting an end</source>
        <translation>训练进程已退出，但没有报告结束状态</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="266"/>
        <source>the training process exited with code {code}</source>
        <translation>训练进程以代码 {code} 退出</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="269"/>
        <source>; last output: {lines}</source>
        <translation>；最后的输出：{lines}</translation>
    </message>
    <message>
        <location filename="../../chatapp/ui/training_process.py" line="275"/>
        <source>out of memory. Try LoRA, a smaller batch size or a shorter block size. Details: {reason}</source>
        <translation>内存不足。请尝试 LoRA、更小的批大小或更短的块大小。详情：{reason}</translation>
    </message>
</context>
</TS>
